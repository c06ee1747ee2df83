"""The chat service: C and Go servers (c/, go/), the terminal client (client/)."""
