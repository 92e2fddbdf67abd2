# Sourced by the examples' deploy-and-run.sh: the status check Azure's scripts repeat after each job.
check_job_status() {
  STATUS=$(az ml job show -n $JOB_NAME --query status -o tsv)
  echo $STATUS
  if [[ $STATUS == "Completed" ]]
  then
    echo "Job completed"
  elif [[ $STATUS == "Failed" ]]
  then
    echo "Job failed"
    exit 1
  else
    echo "Job status not failed or completed"
    exit 2
  fi
}
