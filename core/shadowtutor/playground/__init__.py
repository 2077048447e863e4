"""Trying prompts live against the student, and its health."""
