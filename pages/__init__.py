"""The pages podium serves itself (plain ES modules, no build step) and their security headers."""
