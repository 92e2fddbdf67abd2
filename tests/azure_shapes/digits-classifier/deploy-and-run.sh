set -e

# The az ml commands of a batch scoring walk-through, as an Azure user's script has them. Run with the az shim
# (examples/azure/bin) first on PATH; the images are in ./data and the model folders in deployment-*/model.

# <set_variables>
RESOURCE_GROUP="batch-rg"
WORKSPACE="batch-ws"
az account set --subscription "00000000-0000-0000-0000-000000000000"
az configure --defaults group=$RESOURCE_GROUP workspace=$WORKSPACE
# </set_variables>

# <create_compute>
az ml compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 5
# </create_compute>

# <name_endpoint>
ENDPOINT_NAME="digits-batch"
# </name_endpoint>

# The following code ensures the created endpoint has a unique name
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-zA-Z0-9' | fold -w ${1:-5} | head -n 1)
ENDPOINT_NAME="$ENDPOINT_NAME-$ENDPOINT_SUFIX"

echo "Registering the first model"
# <register_model>
MODEL_NAME='digits-classifier-torch'
az ml model create --name $MODEL_NAME --type "custom_model" --path "deployment-torch/model" -g $RESOURCE_GROUP -w $WORKSPACE
# </register_model>

echo "Creating batch endpoint $ENDPOINT_NAME"
# <create_endpoint>
az ml batch-endpoint create --file endpoint.yml --name $ENDPOINT_NAME --resource-group $RESOURCE_GROUP --workspace-name $WORKSPACE
# </create_endpoint>

# <query_endpoint>
az ml batch-endpoint show --name $ENDPOINT_NAME
# </query_endpoint>

echo "Creating batch deployment for endpoint $ENDPOINT_NAME"
# <create_deployment>
az ml batch-deployment create --file deployment-torch/deployment.yml --endpoint-name $ENDPOINT_NAME --set-default
# </create_deployment>

# <query_deployment>
DEPLOYMENT_NAME="digits-torch-dpl"
az ml batch-deployment show --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME
# </query_deployment>

# <check_job_status> as Azure's scripts write it after each job, once for both examples
source ../check_job_status.sh

echo "Invoking batch endpoint"
# <start_batch_scoring_job>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --input-type uri_folder --query name -o tsv)
# </start_batch_scoring_job>

# <show_job_in_studio>
az ml job show -n $JOB_NAME --web
# </show_job_in_studio>

# <stream_job_logs>
az ml job stream -n $JOB_NAME
# </stream_job_logs>
check_job_status

echo "Invoke batch endpoint with specific output file name"
# <start_batch_scoring_job_set_output>
OUTPUT_FILE_NAME=predictions_`echo $RANDOM`.csv
OUTPUT_PATH="azureml://datastores/workspaceblobstore/paths/$ENDPOINT_NAME"

JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --output-path $OUTPUT_PATH --set output_file_name=$OUTPUT_FILE_NAME --query name -o tsv)
# </start_batch_scoring_job_set_output>
az ml job stream -n $JOB_NAME
check_job_status
az ml job download --name $JOB_NAME --output-name score --download-path ./named-output

echo "Invoke batch endpoint with specific overwrites"
# <start_batch_scoring_job_overwrite>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --mini-batch-size 20 --instance-count 5 --query name -o tsv)
# </start_batch_scoring_job_overwrite>
az ml job stream -n $JOB_NAME
check_job_status

echo "Download scores to local path"
# <download_outputs>
az ml job download --name $JOB_NAME --output-name score --download-path ./
# </download_outputs>

# <list_all_jobs>
az ml batch-deployment list-jobs --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME --query [].name
# </list_all_jobs>

echo "Registering the second model"
# <register_model_non_default>
MODEL_NAME='digits-classifier-sklearn'
az ml model create --name $MODEL_NAME --type "custom_model" --path "deployment-sklearn/model"
# </register_model_non_default>

echo "Create a new batch deployment, not setting it as default this time"
# <create_deployment_non_default>
az ml batch-deployment create --file deployment-sklearn/deployment.yml --endpoint-name $ENDPOINT_NAME
# </create_deployment_non_default>

# <test_deployment_non_default>
DEPLOYMENT_NAME="digits-sklearn-dpl"
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --deployment-name $DEPLOYMENT_NAME --input data --input-type uri_folder --query name -o tsv)
# </test_deployment_non_default>
az ml job stream -n $JOB_NAME
check_job_status

echo "Update the batch deployment as default for the endpoint"
# <update_default_deployment>
az ml batch-endpoint update --name $ENDPOINT_NAME --set defaults.deployment_name=$DEPLOYMENT_NAME
# </update_default_deployment>

# <verify_default_deployment>
az ml batch-endpoint show --name $ENDPOINT_NAME --query "{Name:name, Defaults:defaults}"
# </verify_default_deployment>

# <test_default_deployment>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --input-type uri_folder --query name -o tsv)
# </test_default_deployment>
az ml job stream -n $JOB_NAME
check_job_status
az ml job download --name $JOB_NAME --output-name score --download-path ./default-output

# <delete_deployment>
az ml batch-deployment delete --name digits-torch-dpl --endpoint-name $ENDPOINT_NAME --yes
# </delete_deployment>

# <delete_endpoint>
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
# </delete_endpoint>

# <delete_compute>
az ml compute delete -n batch-cluster --yes
# </delete_compute>
