"""The CDK app (`npx cdk synth`, `npx cdk deploy`); its settings come from context, see infra/settings.py."""

import aws_cdk as cdk

from infra.nag import check_and_acknowledge
from infra.settings import StackSettings
from infra.stack import BatchEndpointsStack

app = cdk.App()
stack = BatchEndpointsStack(app, "BatchEndpoints", settings=StackSettings.from_context(app.node))
check_and_acknowledge(app, stack)
app.synth()
