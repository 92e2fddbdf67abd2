# An MLflow model deployed with no scoring script, as Azure's MLflow batch notebook does it; only the import lines
# differ (azure.ai.ml and azure.identity become batch_endpoints.azure).
from batch_endpoints.azure import MLClient, Input
from batch_endpoints.azure.entities import (
    BatchEndpoint,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    Model,
    AmlCompute,
    Data,
    BatchRetrySettings,
)
from batch_endpoints.azure.constants import AssetTypes, BatchDeploymentOutputAction
from batch_endpoints.azure import DefaultAzureCredential

ml_client = MLClient.from_config(DefaultAzureCredential())

model_name = "line-mlflow"
model = ml_client.models.create_or_update(Model(name=model_name, path="model", type=AssetTypes.MLFLOW_MODEL))
model = ml_client.models.get(name=model_name, label="latest")

endpoint = BatchEndpoint(name="line-fit", description="A straight line, fitted with scikit-learn")
ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

compute_name = "cpu-cluster"
if not any(filter(lambda m: m.name == compute_name, ml_client.compute.list())):
    compute_cluster = AmlCompute(name=compute_name, description="amlcompute", min_instances=0, max_instances=5)
    ml_client.begin_create_or_update(compute_cluster).result()

deployment = ModelBatchDeployment(
    name="line-mlflow",
    description="The line model, scored without code",
    endpoint_name=endpoint.name,
    model=model,
    compute=compute_name,
    settings=ModelBatchDeploymentSettings(
        instance_count=2,
        max_concurrency_per_instance=2,
        mini_batch_size=10,
        output_action=BatchDeploymentOutputAction.APPEND_ROW,
        output_file_name="predictions.csv",
        retry_settings=BatchRetrySettings(max_retries=3, timeout=300),
        logging_level="info",
    ),
)
ml_client.batch_deployments.begin_create_or_update(deployment).result()

dataset = Data(path="data", type=AssetTypes.URI_FOLDER, description="Points to predict", name="line-points")
ml_client.data.create_or_update(dataset)
dataset = ml_client.data.get(name="line-points", label="latest")

input = Input(type=AssetTypes.URI_FOLDER, path=dataset.id)
job = ml_client.batch_endpoints.invoke(
    deployment_name=deployment.name,
    endpoint_name=endpoint.name,
    input=input,
    params_override=[{"mini_batch_size": "20"}, {"compute.instance_count": "1"}],
)
ml_client.jobs.stream(job.name)
scoring_job = list(ml_client.jobs.list(parent_job_name=job.name))[0]
ml_client.jobs.download(name=scoring_job.name, download_path=".", output_name="score")
ml_client.batch_endpoints.begin_delete(endpoint.name).result()
