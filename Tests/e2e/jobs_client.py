"""Drives Hallmark's jobs API with the AWS IoT Device SDK for Python (awsiotsdk's
IotJobsClientV2 over an MQTT 5 mutual-TLS connection), unchanged, as a device built on it would.
Prints one JSON object of what it saw; the shell checks read it.

usage: jobs_client.py HOST PORT CA CERT KEY THING flow|pending|update-other OTHER_THING JOB
"""
import json
import sys
import threading
from concurrent.futures import Future

from awscrt import mqtt5, mqtt_request_response
import awsiot
from awsiot import iotjobs, mqtt5_client_builder, V2ServiceException

host, port, ca, cert, key, thing, mode = sys.argv[1:8]
extra = sys.argv[8:]
connected = Future()
client = mqtt5_client_builder.mtls_from_path(
    endpoint=host, port=int(port), cert_filepath=cert, pri_key_filepath=key, ca_filepath=ca, client_id=thing,
    on_lifecycle_connection_success=lambda data: connected.set_result(True),
    on_lifecycle_connection_failure=lambda data: connected.done() or connected.set_exception(Exception(str(data.exception))))
client.start()
connected.result(timeout=10)
jobs = iotjobs.IotJobsClientV2(client, mqtt_request_response.ClientOptions(
    max_request_response_subscriptions=4, max_streaming_subscriptions=2, operation_timeout_in_seconds=10))
out = {}

def error_code(future):
    try:
        future.result(timeout=10)
        return None
    except V2ServiceException as e:
        return e.modeled_error.code if e.modeled_error else "unmodeled"
    except Exception as e:
        return "failed: " + type(e).__name__

nexts = []
got_next = threading.Event()
def on_next(event):
    nexts.append(event.execution.job_id if event.execution else None)
    got_next.set()

if mode == "flow":
    stream = jobs.create_next_job_execution_changed_stream(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
        awsiot.ServiceStreamOptions(incoming_event_listener=on_next))
    stream.open()
    pending = jobs.get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)).result(timeout=10)
    out["queued"] = [j.job_id for j in pending.queued_jobs or []]
    out["in_progress"] = [j.job_id for j in pending.in_progress_jobs or []]
    started = jobs.start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing, step_timeout_in_minutes=30)).result(timeout=10)
    execution = started.execution
    out["started"] = {"job": execution.job_id, "status": execution.status, "version": execution.version_number,
                      "document": execution.job_document, "queued_at_year": execution.queued_at.year}
    job = execution.job_id
    updated = jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id=job, status="IN_PROGRESS", status_details={"receive": "1/2"},
        expected_version=execution.version_number, include_job_execution_state=True)).result(timeout=10)
    out["progress_version"] = updated.execution_state.version_number
    out["stale"] = error_code(jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id=job, status="SUCCEEDED", expected_version=execution.version_number)))
    jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id=job, status="SUCCEEDED", status_details={"reason": "accepted"},
        expected_version=updated.execution_state.version_number)).result(timeout=10)
    described = jobs.describe_job_execution(iotjobs.DescribeJobExecutionRequest(thing_name=thing, job_id=job)).result(timeout=10)
    out["final"] = {"status": described.execution.status, "details": described.execution.status_details}
    out["after_terminal"] = error_code(jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id=job, status="IN_PROGRESS")))
    out["unknown_job"] = error_code(jobs.describe_job_execution(iotjobs.DescribeJobExecutionRequest(thing_name=thing, job_id="no-such-job")))
    got_next.wait(timeout=5)
    out["notify_next"] = nexts
elif mode == "pending":
    pending = jobs.get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)).result(timeout=10)
    out["queued"] = [j.job_id for j in pending.queued_jobs or []]
    out["in_progress"] = [j.job_id for j in pending.in_progress_jobs or []]
elif mode == "update-other":
    other, job = extra
    out["other"] = error_code(jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(thing_name=other, job_id=job, status="SUCCEEDED")))
print(json.dumps(out, default=str))
stopped = Future()
client.stop()
