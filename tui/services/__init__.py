"""Services: search, chat, memory, models, usage. Never import textual."""
