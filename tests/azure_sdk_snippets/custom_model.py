# A scoring script deployment written as Azure's "Deploy models for scoring in batch endpoints" walks through it in
# Python; only the import lines differ (azure.ai.ml and azure.identity become batch_endpoints.azure).
from batch_endpoints.azure import Input, MLClient
from batch_endpoints.azure.constants import AssetTypes, BatchDeploymentOutputAction
from batch_endpoints.azure.entities import (
    AmlCompute,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    Environment,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from batch_endpoints.azure import DefaultAzureCredential

subscription_id = "<SUBSCRIPTION_ID>"
resource_group = "<RESOURCE_GROUP>"
workspace = "<AML_WORKSPACE_NAME>"
ml_client = MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)

endpoint_name = "iris-batch"
endpoint = BatchEndpoint(name=endpoint_name, description="An iris classifier for batch scoring")
ml_client.batch_endpoints.begin_create_or_update(endpoint).result()

model = ml_client.models.create_or_update(Model(name="iris-classifier", path="model", type=AssetTypes.CUSTOM_MODEL))

env = Environment(
    name="batch-iris-env",
    conda_file="environment/conda.yaml",
    image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
)

compute_name = "batch-cluster"
if not any(filter(lambda m: m.name == compute_name, ml_client.compute.list())):
    compute_cluster = AmlCompute(
        name=compute_name,
        description="Batch endpoints compute cluster",
        min_instances=0,
        max_instances=5,
    )
    ml_client.compute.begin_create_or_update(compute_cluster).result()

deployment = ModelBatchDeployment(
    name="iris-sklearn",
    description="A logistic regression over the iris measurements",
    endpoint_name=endpoint.name,
    model=model,
    code_configuration=CodeConfiguration(code="code", scoring_script="batch_driver.py"),
    environment=env,
    compute=compute_name,
    settings=ModelBatchDeploymentSettings(
        max_concurrency_per_instance=2,
        mini_batch_size=2,
        instance_count=2,
        output_action=BatchDeploymentOutputAction.APPEND_ROW,
        output_file_name="predictions.csv",
        retry_settings=BatchRetrySettings(max_retries=3, timeout=300),
        logging_level="info",
    ),
)
ml_client.batch_deployments.begin_create_or_update(deployment).result()

endpoint = ml_client.batch_endpoints.get(endpoint_name)
endpoint.defaults.deployment_name = deployment.name
ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
print(f"The default deployment is {endpoint.defaults.deployment_name}")

iris_unlabeled = Data(
    path="data",
    type=AssetTypes.URI_FOLDER,
    description="Iris measurements to classify",
    name="iris-unlabeled",
)
ml_client.data.create_or_update(iris_unlabeled)
iris_unlabeled = ml_client.data.get(name="iris-unlabeled", label="latest")

job = ml_client.batch_endpoints.invoke(
    endpoint_name=endpoint.name,
    inputs={"iris": Input(path=iris_unlabeled.id, type=AssetTypes.URI_FOLDER)},
)
ml_client.jobs.get(job.name)
ml_client.jobs.stream(job.name)

scoring_job = list(ml_client.jobs.list(parent_job_name=job.name))[0]
print("Job name:", scoring_job.name)
print("Job status:", scoring_job.status)
print("Job duration:", scoring_job.creation_context.last_modified_at - scoring_job.creation_context.created_at)

ml_client.jobs.download(name=scoring_job.name, download_path=".", output_name="score")

jobs = ml_client.batch_deployments.list_jobs(endpoint_name=endpoint.name, name=deployment.name)
