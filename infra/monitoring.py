"""A CloudWatch dashboard of the system, and alarms on failed jobs, Lambda errors and API server errors.

Every metric here is one AWS publishes by itself: Step Functions' executions (AWS/States), the Lambdas' errors,
throttles and durations (AWS/Lambda), the API's requests, errors and latency (AWS/ApiGateway). AWS Batch
publishes no queue depth or job count metrics; the dashboard shows what the scoring containers log instead
(a Logs Insights query on their log group), and the console link in the stack outputs shows the queues.
The job workflow's Lambdas also publish custom metrics (lambdas.workflow.handlers: EMF, namespace
BatchEndpoints, dimension endpoint): jobs started, completed, failed and canceled, files succeeded and failed,
mini-batches planned and scored. An endpoint's metrics exist once it has run a job, so the dashboard finds them
with SEARCH expressions (one line per endpoint) rather than naming each endpoint. Mini-batches per second is
the MiniBatchesScored sum of a period divided by the period's seconds: PERIOD() takes only a metric, not what a
SEARCH returns, so the divisor is the SEARCH's own period. No alarm on failed files: some failures are normal
(a job's error_threshold decides), and a job that fails for them trips the failed-jobs alarm.
Alarms notify the alarm topic; subscribe to it (context alarm_email, or any SNS subscription).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = cdk.Duration.minutes(5)
NAMESPACE = "BatchEndpoints"
ENDPOINT_DIMENSION = "endpoint"


def endpoint_metric_search(
    metric_name: str, label: str, *, statistic: str = "Sum", divide_by_period: bool = False
) -> cloudwatch.MathExpression:
    """Every endpoint's `metric_name` (one line each) by a SEARCH over the custom namespace."""
    seconds = int(PERIOD.to_seconds())
    search = f"SEARCH('{{{NAMESPACE},{ENDPOINT_DIMENSION}}} MetricName=\"{metric_name}\"', '{statistic}', {seconds})"
    return cloudwatch.MathExpression(
        expression=f"{search} / {seconds}" if divide_by_period else search,
        using_metrics={},
        label=f"{label} ${{PROP('Dim.{ENDPOINT_DIMENSION}')}}",
        period=PERIOD,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        pipeline_state_machine: sfn.StateMachine,
        functions: Sequence[lambda_.Function],
        rest_api: apigateway.RestApi,
        scoring_logs: logs.ILogGroup,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic = sns.Topic(self, "Alarms", display_name="Batch endpoints alarms", enforce_ssl=True)
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        notify = actions.SnsAction(self.alarm_topic)

        executions = {
            "started": state_machine.metric_started(period=PERIOD),
            "succeeded": state_machine.metric_succeeded(period=PERIOD),
            "failed": state_machine.metric_failed(period=PERIOD),
            "aborted (canceled)": state_machine.metric_aborted(period=PERIOD),
            "timed out": state_machine.metric_timed_out(period=PERIOD),
        }
        pipelines = {
            "pipelines started": pipeline_state_machine.metric_started(period=PERIOD),
            "pipelines failed": pipeline_state_machine.metric_failed(period=PERIOD),
            "pipelines timed out": pipeline_state_machine.metric_timed_out(period=PERIOD),
        }
        self.failed_jobs_alarm = cloudwatch.Alarm(
            self,
            "FailedJobs",
            alarm_description=(
                "A job's execution failed: its record says why (bep job show <id>). Jobs that exceed their "
                "error_threshold count too, as do workflow faults (MarkFailed ran)."
            ),
            metric=cloudwatch.MathExpression(
                # Model jobs' and pipeline jobs' executions alike.
                expression="failed + timedout + pfailed + ptimedout",
                using_metrics={
                    "failed": executions["failed"],
                    "timedout": executions["timed out"],
                    "pfailed": pipelines["pipelines failed"],
                    "ptimedout": pipelines["pipelines timed out"],
                },
                period=PERIOD,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        lambda_errors = {
            f"e{n}": function.metric_errors(period=PERIOD, statistic="Sum") for n, function in enumerate(functions)
        }
        self.lambda_errors_alarm = cloudwatch.Alarm(
            self,
            "LambdaErrors",
            alarm_description="A Lambda of the API or the job workflow raised (see its log group; X-Ray traces)",
            metric=cloudwatch.MathExpression(
                expression=" + ".join(lambda_errors), using_metrics=lambda_errors, period=PERIOD
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.api_errors_alarm = cloudwatch.Alarm(
            self,
            "ApiServerErrors",
            alarm_description="The API answered 5xx (the Lambda failed or timed out)",
            metric=rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failed_jobs_alarm, self.lambda_errors_alarm, self.api_errors_alarm):
            alarm.add_alarm_action(notify)

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.days(1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs (workflow executions)",
                left=[metric.with_(label=label) for label, metric in {**executions, **pipelines}.items()],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[self.failed_jobs_alarm, self.lambda_errors_alarm, self.api_errors_alarm],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs by endpoint",
                left=[
                    endpoint_metric_search("JobsStarted", "started"),
                    endpoint_metric_search("JobsCompleted", "completed"),
                    endpoint_metric_search("JobsFailed", "failed"),
                    endpoint_metric_search("JobsCanceled", "canceled"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Mini-batches per second by endpoint",
                left=[endpoint_metric_search("MiniBatchesScored", "scored/s", divide_by_period=True)],
                right=[endpoint_metric_search("MiniBatchesPlanned", "planned")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Files by endpoint",
                left=[
                    endpoint_metric_search("FilesFailed", "failed"),
                    endpoint_metric_search("FilesNotScored", "not scored"),
                    endpoint_metric_search("FilesSucceeded", "succeeded"),
                    endpoint_metric_search("FilesPlanned", "planned"),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles",
                left=[f.metric_errors(period=PERIOD, label=f"errors {_short(f)}") for f in functions],
                right=[f.metric_throttles(period=PERIOD, label=f"throttles {_short(f)}") for f in functions],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration (p90)",
                left=[f.metric_duration(period=PERIOD, statistic="p90", label=_short(f)) for f in functions],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest_api.metric_count(period=PERIOD, label="requests"),
                    rest_api.metric_client_error(period=PERIOD, label="4xx"),
                    rest_api.metric_server_error(period=PERIOD, label="5xx"),
                ],
                right=[rest_api.metric_latency(period=PERIOD, statistic="p90", label="latency p90")],
                width=12,
            ),
            cloudwatch.LogQueryWidget(
                title="Scoring containers: latest errors",
                log_group_names=[scoring_logs.log_group_name],
                query_lines=[
                    "fields @timestamp, @logStream, @message",
                    "filter @message like /ERROR|Traceback|failed/",
                    "sort @timestamp desc",
                    "limit 50",
                ],
                width=12,
            ),
        )


def _short(function: lambda_.Function) -> str:
    """The construct id (Plan, Finalize, Handler, ...): the generated function names are long."""
    return function.node.id
