"""The deploy gate: criteria, statistics, evidence, decisions, rollout and routing."""
