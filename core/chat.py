"""The chat template used when a tokenizer has none.

Chat models ship their template with the tokenizer and trustbits uses it as is. A base model
without one gets this plain layout, so that prompts stay well defined and identical across
every quantized copy of that model:

    System: {system}

    User: {user}

    Assistant: {assistant}

(turns separated by a blank line; the generation prompt is ``Assistant:`` followed by a space).
"""

PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}System: "
    "{% elif message['role'] == 'user' %}User: "
    "{% else %}Assistant: {% endif %}"
    "{{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


def ensure_chat_template(tokenizer) -> bool:
    """Give `tokenizer` the plain template if it has none; returns True when it did."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return True
