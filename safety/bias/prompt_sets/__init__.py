"""Built-in prompt sets for bias probes (YAML data, read by `safety.bias._prompts`)."""
