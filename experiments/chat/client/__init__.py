"""papaya-chat, the terminal client of the chat service (experiments/chat/README.md).

`python -m experiments.chat.client`, the `papaya-chat` console script and `invoke chat` all
run ``experiments.chat.client.__main__.main``.
"""
