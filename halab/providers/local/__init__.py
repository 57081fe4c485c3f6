"""The embedded local provider: user-mode Linux guests on a switch in a private namespace."""
