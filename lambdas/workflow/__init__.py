"""The job workflow's Lambda steps (handlers.py) and their contract with the state machine.

Everything that travels through Step Functions and Batch is ids, S3 keys and small numbers: a job's file lists
live in its shard files in S3 (Step Functions state <= 256 KiB, a Batch job request <= 30 KiB).

Execution input (StepFunctionsOrchestrator.start; execution name = job id)
--------------------------------------------------------------------------
    {
      "job_id": "digits-0123456789ab",
      "instance_count": 2,                       the Map's MaxConcurrencyPath
      "compute": "cpu",                          "cpu" | "gpu": the compute's kind
      "job_queue": "arn:aws:batch:<region>:<account>:job-queue/<queue>",
      "job_definition": "arn:aws:batch:<region>:<account>:job-definition/bep-digits_blue:3"
    }

Plan: handlers.plan
-------------------
    event:  {"job_id": "..."}                    other keys are ignored: the execution input can go as is
    return: {
      "job_id": "...",
      "planned": true,                           false: the input's listing goes on; call again with the same
                                                 event (each call lists planning.PLAN_WINDOW_FILES files at most)
      "shard_count": 8,                          >= 1 once planned; the shards written so far before
      "shards_bucket": "my-bucket",              the shard list: a JSON array of {"shard": "s3://..."},
      "shards_key": "jobs/<job id>/shards/index.json",   one item per shard (a DISTRIBUTED Map's ItemReader)
      "attempt_duration_s": 5400                 timeout for one Batch attempt at one of this job's shards
    }
    raises: the input holds no files, does not exist, or is not the declared type (errorType ValidationError);
            the job does not exist (NotFoundError).

Per shard (Map item processor)
------------------------------
    The item is {"shard": "s3://<bucket>/jobs/<job id>/shards/shard-00000.json"}; the ItemSelector adds
    the execution input's ids: {"shard.$": "$$.Map.Item.Value.shard", "job_id.$": "$.job_id",
    "job_queue.$": "$.job_queue", "job_definition.$": "$.job_definition",
    "attempt_duration_s.$": "$.plan.attempt_duration_s", "shard_number.$": "$$.Map.Item.Index"} (with Plan's
    result at ResultPath "$.plan").
    arn:aws:states:::batch:submitJob.sync with
        JobName = <job_id>-s<shard_number>       the log reader finds a job's Batch jobs by the prefix <job_id>-s
        JobQueue = job_queue, JobDefinition = job_definition
        Parameters = {"job_id": job_id, "shard": shard}     fill Ref::job_id and Ref::shard
        Timeout = {"AttemptDurationSeconds": attempt_duration_s}
    Batch retries the job itself (the job definition's retryStrategy). A shard that still fails should not end
    the Map: catch it (States.ALL -> a Pass state) so Finalize runs and reports its mini-batches as never
    completed, as the local backend does. The Map's ResultWriter writes the children's outputs to S3 under
    jobs/<job id>/map-results/ (gathered in the state they would have to fit in 256 KiB); its own result, where
    they went, is kept out of the state (ResultPath null). Every child execution ends with {}, scored or failed,
    so that those files stay small. A failed shard records why in the record table, the job's first failure only:
    item pk "shard_failure#<job id>", key = job id, data = {"shard": n, "reason": "..."} as JSON text, version 1,
    counter c_shards_failed (ADD 1 per failed shard). Finalize reads it (shard_failures.first_shard_failure) into the
    error of a job whose mini-batches never completed; a resume deletes it.

Finalize: handlers.finalize
---------------------------
    event:  {"job_id": "..."}
    return: {
      "job_id": "...",
      "status": "Completed" | "Failed" | "Canceled",
      "error": null | "error_threshold exceeded: ...",
      "counts": {"files": 0, "mini_batches": 0, "shards": 0, "files_succeeded": 0, "files_failed": 0,
                 "files_not_scored": 0, "mini_batches_failed": 0, "rows": 0},
      "output": "s3://..." | null                the merged output file, when Completed with append_row
    }
    Safe to run again (same output, no duplicate rows). A job that ends "Failed" here is a normal end of the
    workflow (the record says why); a Choice on status may route it to a Fail state for visibility.

MarkFailed: handlers.mark_failed (the Catch of Plan, the Map and Finalize, with ResultPath "$.error")
----------------------------------------------------------------------------------------------------------
    event:  {"job_id": "...", "error": {"Error": "States.TaskFailed", "Cause": "..."}}
    return: {"job_id": "...", "status": "Failed" | "Canceled", "error": "a readable message"}
    The Cause of a Lambda error (a JSON errorMessage/errorType), of a Batch job (its description) or any other
    text becomes one readable line in the job record. A job already final is left as it is.

ExecutionEnded: handlers.execution_ended (an EventBridge rule's target, invoked asynchronously)
-----------------------------------------------------------------------------------------------
    event:  EventBridge's "Step Functions Execution Status Change" (source aws.states) for this state machine,
            detail.status ABORTED, FAILED or TIMED_OUT: {"detail": {"executionArn": "...", "stateMachineArn":
            "...", "name": "<job id>" | "<job id>-resume-<n>", "status": "ABORTED", "input": "<the execution
            input as JSON text>", "error": "..." | null, "cause": "..." | null, ...}, ...}
    return: {"job_id": "..." | null, "status": "Canceled" | "Failed" | ... | null, "closed": true | false}
    A stopped or failed execution runs no further state, so this closes its job: a CancelRequested job is
    finalized as Canceled (cancel only records the request and stops the execution: API Gateway gives the API 29
    s, and finalize grows with the job); a job still Queued, Running or Finalizing is marked Failed with the
    execution's error and cause (what no Catch sees: States.DataLimitExceeded, States.Runtime, the execution's
    own timeout, a stop by hand). Ignored, as "closed": false: a job already final (the workflow closed it, or the
    event came again: EventBridge delivers at least once), an execution that is not the job's current one (an
    earlier execution of a resumed job, a shard's child execution), an event of no job.

Every handler raises on a failure of its own (storage or records unreachable), so Retry/Catch (and Lambda's
retries of an asynchronous invocation) apply; plan, finalize and execution_ended are idempotent and safe to retry
on Lambda.ServiceException, Lambda.TooManyRequestsException and States.Timeout.

Pipeline jobs: handlers.pipeline_round and handlers.pipeline_step_ended (rounds; docs/concepts.md)
--------------------------------------------------------------------------------------------------
A pipeline job's DAG and its steps' statuses live in its record (batch_endpoints.pipeline_rounds); the states
carry step names only, so the state stays small whatever the pipeline's size.

    pipeline_round
    event:  {"job_id": "...", "round": 0}        0 in an execution's first round (a new or resumed job), then
                                                 the previous round's "round"
    return: {
      "job_id": "...", "round": 1,
      "done": false,                             true once the job has ended (no steps then)
      "status": "Running" | "Completed" | "Failed" | "Canceled",
      "error": null | "step prepare failed: ...",  the job's error once it has failed (the Fail state's cause)
      "steps": [                                 the steps this round starts, no more than the default
                                                 compute's instances nor 40, each with what the Map runs it by:
        {"step": "prepare", "job_name": "<job id>-prepare", "type": "command",
         "job_queue": "arn:...:job-queue/...",   the step's compute's (else the pipeline's default compute's)
         "job_definition": "arn:...:job-definition/bep-<endpoint>_<deployment>:<n>"},  the deployment's
        {"step": "score", "job_name": "<job id>-score", "type": "parallel",
         "execution_name": "<job id>-score" | "<job id>-score-resume-<n>",
         "execution_input": {...}}               the model-job state machine's execution input for the
                                                 step's job (StepFunctionsOrchestrator.execution_input)
      ]
    }
    A parallel step's job is recorded (or reopened, as a resume) before the round returns, with the ARN of the
    execution named here; a step whose job had already completed is recorded Completed and left out. Needs
    BEP_STATE_MACHINE_ARN (the model-job state machine) and the compute registry's variables.

    pipeline_step_ended (once per step of the round, after it ran)
    event:  {"job_id": "...", "step": "score", "error": null | {"Error": "...", "Cause": "..."}}
    return: {"job_id": "...", "step": "score", "status": "Completed" | "Failed" | "Canceled"}
    A step already ended keeps its first result (a retried call changes nothing). A parallel step's end is its
    job's: Completed only when its job completed (a canceled job's execution succeeds), else why the job ended.

    Pipeline job execution input (StepFunctionsOrchestrator.start; execution name = job id): {"job_id": "..."}.
    execution_ended closes a pipeline job whose execution ended outside its rounds: Canceled when a cancel was
    requested, else Failed; its steps that had not ended Canceled, and a running parallel step's job asked to stop
    (its own execution's end then closes it Canceled, as a step of a canceled pipeline).
"""
