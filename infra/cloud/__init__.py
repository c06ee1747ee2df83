"""Cloud VMs for the pipeline through Apache Libcloud: config, credentials, drivers, plan,
creation/destruction and the per-lab state. infra.providers.cloud puts them together."""
