"""The embedded dev stack, the Bedrock emulator, and deployment files."""
