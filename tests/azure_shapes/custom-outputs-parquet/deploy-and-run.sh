set -e

# The az ml commands of a batch walk-through whose scoring script writes its own outputs, one Parquet file per input
# file, as an Azure user's script has them. Run with the az shim (examples/azure/bin) first on PATH; the CSV files
# are in ./data and the model folder in ./model.

# <name_endpoint>
ENDPOINT_NAME="iris-parquet-batch"
# </name_endpoint>

# The following code ensures the created endpoint has a unique name
ENDPOINT_SUFIX=$(cat /dev/urandom | tr -dc 'a-zA-Z0-9' | fold -w ${1:-5} | head -n 1)
ENDPOINT_NAME="$ENDPOINT_NAME-$ENDPOINT_SUFIX"

echo "Register the model"
# <register_model>
MODEL_NAME='iris-classifier-sklearn'
az ml model create --name $MODEL_NAME --type "custom_model" --path "model"
# </register_model>

echo "Creating batch endpoint $ENDPOINT_NAME"
# <create_endpoint>
az ml batch-endpoint create -n $ENDPOINT_NAME -f endpoint.yml
# </create_endpoint>

echo "Creating batch deployment"
# <create_deployment>
az ml batch-deployment create --file deployment.yml --endpoint-name $ENDPOINT_NAME --set-default
# </create_deployment>

source ../check_job_status.sh

echo "Invoking batch endpoint"
# <start_batch_scoring_job>
JOB_NAME=$(az ml batch-endpoint invoke --name $ENDPOINT_NAME --input data --input-type uri_folder --query name -o tsv)
# </start_batch_scoring_job>

# <stream_job_logs>
az ml job stream -n $JOB_NAME
# </stream_job_logs>
check_job_status

echo "Download scores to local path"
# <download_outputs>
az ml job download --name $JOB_NAME --output-name score --download-path ./
# </download_outputs>

# <delete_endpoint>
az ml batch-endpoint delete --name $ENDPOINT_NAME --yes
# </delete_endpoint>
