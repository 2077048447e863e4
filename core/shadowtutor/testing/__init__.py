"""Test support shipped with the library (as datasette ships its own): loopback model servers
speaking the OpenAI and Ollama protocols, and simulated gate windows."""
