set -e

# The az ml commands of an image classification walk-through that replaces its deployment in place: `create` on
# a deployment that exists updates it, as Azure's does, and `update --set` changes one setting. Run with the az shim
# (examples/azure/bin) first on PATH; the images are in ./data and the model folder in ./model.

# <name_endpoint>
ENDPOINT_NAME="imagenet-classifier-batch"
# </name_endpoint>

# The following code ensures the created endpoint has a unique name
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-zA-Z0-9' | fold -w ${1:-5} | head -n 1)
ENDPOINT_NAME="$ENDPOINT_NAME-$ENDPOINT_SUFIX"
DEPLOYMENT_NAME="imagenet-classifier-knn"

echo "Register the model"
# <register_model>
az ml model create --name imagenet-classifier --type custom_model --path model
# </register_model>

echo "Creating batch endpoint $ENDPOINT_NAME"
# <create_endpoint>
az ml batch-endpoint create --file endpoint.yml --name $ENDPOINT_NAME
# </create_endpoint>

echo "Creating batch deployment $DEPLOYMENT_NAME"
# <create_deployment>
az ml batch-deployment create --file deployment-by-file.yml --endpoint-name $ENDPOINT_NAME --set-default
# </create_deployment>

source ../check_job_status.sh

echo "Invoking batch endpoint with the images"
# <start_batch_scoring_job>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --input-type uri_folder --query name -o tsv)
# </start_batch_scoring_job>
az ml job stream -n $JOB_NAME
check_job_status
az ml job download --name $JOB_NAME --output-name score --download-path ./by-file

echo "Update the deployment to classify by mini-batch"
# <create_deployment_by_batch>
az ml batch-deployment create --file deployment-by-batch.yml --endpoint-name $ENDPOINT_NAME --set-default
# </create_deployment_by_batch>

# <update_deployment_mini_batch_size>
az ml batch-deployment update --file deployment-by-batch.yml --endpoint-name $ENDPOINT_NAME --set settings.mini_batch_size=8
az ml batch-deployment show --name $DEPLOYMENT_NAME --endpoint-name $ENDPOINT_NAME --query settings.mini_batch_size -o tsv > mini-batch-size.txt
# </update_deployment_mini_batch_size>

echo "Invoking batch endpoint with inputs and outputs by name"
# <start_batch_scoring_job_set_inputs>
OUTPUT_PATH="azureml://datastores/workspaceblobstore/paths/$ENDPOINT_NAME/set-output"
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --set inputs.images.type=uri_folder inputs.images.path=data outputs.score.path=$OUTPUT_PATH settings.mini_batch_size=3 --query name -o tsv)
# </start_batch_scoring_job_set_inputs>
az ml job stream -n $JOB_NAME
check_job_status
az ml job show -n $JOB_NAME --query settings.mini_batch_size -o tsv > set-mini-batch-size.txt
az ml job download --name $JOB_NAME --output-name score --download-path ./by-set

echo "Invoking batch endpoint with an inputs file"
# <start_batch_scoring_job_inputs_file>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --file inputs.yml --query name -o tsv)
# </start_batch_scoring_job_inputs_file>
az ml job stream -n $JOB_NAME
check_job_status
az ml job download --name $JOB_NAME --output-name score --download-path ./by-inputs-file

# <delete_endpoint>
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
# </delete_endpoint>
