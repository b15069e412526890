"""Strategies: what proposes the next network (REINFORCE and PPO controllers, random)."""
