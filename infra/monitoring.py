"""A CloudWatch dashboard of the system, and alarms on failed jobs, Lambda errors and API server errors.

Every metric here is one AWS publishes by itself: Step Functions' executions (AWS/States), the Lambdas' errors,
throttles and durations (AWS/Lambda), the API's requests, errors and latency (AWS/ApiGateway). AWS Batch
publishes no queue depth or job count metrics; the dashboard shows what the scoring containers log instead
(a Logs Insights query on their log group), and the console link in the stack outputs shows the queues.
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


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
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
        self.failed_jobs_alarm = cloudwatch.Alarm(
            self,
            "FailedJobs",
            alarm_description=(
                "A job's execution failed: its record says why (bep job show <id>). Jobs that exceed their "
                "error_threshold count too, as do workflow faults (MarkFailed ran)."
            ),
            metric=cloudwatch.MathExpression(
                expression="failed + timedout",
                using_metrics={"failed": executions["failed"], "timedout": executions["timed out"]},
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
                left=[metric.with_(label=label) for label, metric in executions.items()],
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
