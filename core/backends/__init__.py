"""Model backends the student (and judge) is reached through: Ollama and OpenAI-compatible."""
