"""Screening: safety checks over prompts and images, and the policy that decides on them."""
