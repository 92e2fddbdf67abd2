"""The command line a scoring script sees in `sys.argv`: the run settings, named as Azure's batch deployments pass
them.

Azure runs a batch deployment's scoring script inside its parallel-run driver, whose command line carries the run
settings as `--name value` pairs; scripts written for Azure read some of them with argparse, most often
`parser.add_argument("--logging_level")` then `args, _ = parser.parse_known_args()`. The names are the driver's
reserved arguments (azureml-pipeline-steps, ParallelRunStep: mini_batch_size, error_threshold, output_action,
logging_level, run_invocation_timeout, run_max_try, process_count_per_node, append_row_file_name); the driver's
own bookkeeping (its SDK version, input dataset names, the mounted output folder) has no meaning here and is not
passed.
"""

from __future__ import annotations

from batch_endpoints.specs import OutputAction, RunSettings


def script_arguments(settings: RunSettings, scoring_script: str) -> list[str]:
    """`--name value` pairs for the job's effective settings (the deployment's, with the invocation's overrides)."""
    arguments = {
        "--scoring_module_name": scoring_script,
        "--mini_batch_size": str(settings.mini_batch_size),
        "--error_threshold": str(settings.error_threshold),
        "--output_action": settings.output_action.value,
        # Upper case, as Azure's driver passes it: logging.setLevel takes it as it is, and .upper() changes nothing.
        "--logging_level": settings.logging_level.upper(),
        "--run_invocation_timeout": str(settings.retry_settings.timeout),
        # Tries, not retries: the first attempt and max_retries more, which is what this runner makes.
        "--run_max_try": str(settings.retry_settings.max_retries + 1),
        "--process_count_per_node": str(settings.max_concurrency_per_instance),
    }
    if settings.output_action == OutputAction.APPEND_ROW:
        arguments["--append_row_file_name"] = settings.output_file_name
    return [part for pair in arguments.items() for part in pair]
