"""The CDK app's constructs, one per component, and the stack that wires them (stack.py)."""
