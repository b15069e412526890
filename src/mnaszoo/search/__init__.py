"""Platform-aware architecture search over the MnasNet space (populated during integration)."""
