"""The wire protocol's constants (experiments/chat/PROTOCOL.md is the authority)."""

KEY_LENGTH = 128  # the client first sends exactly this many bytes: the shared key
MAX_LINE = 4096  # the longest line, newline included; a longer one closes the connection
