"""Pod Security, debug profiles, users, permissions, the profile decision and the preflight."""
