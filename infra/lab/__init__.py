"""The lab: hosts on this machine, each a network namespace with its own Debian root and sshd.

``infra.providers.lab`` drives it; the modules here do one job each: ``config`` (which hosts),
``rootfs`` (debootstrap and the tarball cache), ``net`` (bridge, namespaces, veths),
``hosts`` (SSH setup and the host's processes), ``mounts`` and ``teardown`` (removal by prefix).
"""
