set -e

# An MLflow model scored with no scoring script, then with one, as Azure's MLflow walk-through runs them. Run
# with the az shim (examples/azure/bin) first on PATH; the model is in ./model and the CSV files in ./data.

# The following code ensures the created endpoint has a unique name
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-zA-Z0-9' | fold -w ${1:-5} | head -n 1)
ENDPOINT_NAME="iris-classifier-$ENDPOINT_SUFIX"

# <register_model>
MODEL_NAME='iris-classifier-mlflow'
az ml model create --name $MODEL_NAME --type "mlflow_model" --path "model"
# </register_model>

# <register_dataset>
az ml data create -f iris-dataset-unlabeled.yml
# </register_dataset>

echo "Creating batch endpoint $ENDPOINT_NAME"
# <create_batch_endpoint>
az ml batch-endpoint create -n $ENDPOINT_NAME -f endpoint.yml
# </create_batch_endpoint>

# <create_batch_deployment_set_default>
az ml batch-deployment create --file deployment-simple/deployment.yml --endpoint-name $ENDPOINT_NAME --set-default
# </create_batch_deployment_set_default>

# <update_default_deployment>
DEPLOYMENT_NAME="classifier-iris-mlflow"
az ml batch-endpoint update --name $ENDPOINT_NAME --set defaults.deployment_name=$DEPLOYMENT_NAME
# </update_default_deployment>

# <check_batch_endpooint_detail>
az ml batch-endpoint show --name $ENDPOINT_NAME
# </check_batch_endpooint_detail>

# <check_batch_deployment_detail>
az ml batch-deployment show --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME
# </check_batch_deployment_detail>

# <check_job_status> as Azure's scripts write it after each job, once for both examples
source ../check_job_status.sh

echo "Invoking batch endpoint"
# <start_batch_scoring_job>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input azureml:iris-dataset-unlabeled@latest --query name -o tsv)
# </start_batch_scoring_job>

# <show_job_in_studio>
az ml job show -n $JOB_NAME --web
# </show_job_in_studio>

# <list_all_jobs>
az ml batch-deployment list-jobs --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME --query [].name
# </list_all_jobs>

# <stream_job_logs_to_console>
az ml job stream -n $JOB_NAME
# </stream_job_logs_to_console>
check_job_status

# <download_scores>
az ml job download --name $JOB_NAME --output-name score --download-path ./
# </download_scores>

echo "Create a new batch deployment with custom logic"
# <create_new_deployment_not_default>
az ml batch-deployment create --file deployment-custom/deployment.yml --endpoint-name $ENDPOINT_NAME
# </create_new_deployment_not_default>

# <test_new_deployment>
DEPLOYMENT_NAME="classifier-iris-custom"
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --deployment-name $DEPLOYMENT_NAME --input data --input-type uri_folder --query name -o tsv)
# </test_new_deployment>

az ml job stream -n $JOB_NAME
check_job_status

# <download_scores>
az ml job download --name $JOB_NAME --output-name score --download-path ./custom-output
# </download_scores>

# <delete_endpoint>
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
# </delete_endpoint>
