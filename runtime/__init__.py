"""The runtime: the worker that runs tasks, and the triggers that create them.

``service.run_runtime`` is what ``taskops worker`` and ``taskops run`` start. The map:
``worker`` (claims, limits, kill) → ``run`` (one task's agent loop) → a provider
(``scripted``, ``openai_chat`` + ``openai_stream``, chosen by ``providers``, speaking the
``agent`` interface) and ``tools``; ``loops`` and ``lifecycle`` hold the rules;
``triggers`` fire schedules (led by one process through the store's leader lock); ``demo``
keeps ``--demo`` lively. The runtime meets the bot only through the store's public API.
"""
