"""cinemo_instance_refresh against the Auto Scaling API shapes (botocore
Stubber validates every request against the service model). moto has no
instance refresh, so this is where its behaviour is proven."""

import pytest

from conftest import FakeClock, stubbed

ASG = "cinemo-edge-public"
REFRESH_ID = "08b91cf7-8fa6-48af-b6a6-d227f40f1b9b"
ALARMS = ["cinemo-edge-deploy-5xx", "cinemo-edge-deploy-unhealthy", "cinemo-edge-deploy-customer-failures"]
OPTS = {
    "min_healthy_percentage": 100,
    "max_healthy_percentage": 200,
    "instance_warmup": 120,
    "checkpoint_percentages": [50, 100],
    "checkpoint_delay": 300,
    "bake_time": 600,
    "skip_matching": True,
    "auto_rollback": True,
    "alarms": ALARMS,
}


def refresh(status, percent=0, reason="", rollback=None):
    r = {"InstanceRefreshId": REFRESH_ID, "AutoScalingGroupName": ASG, "Status": status,
         "PercentageComplete": percent, "InstancesToUpdate": 4 - percent * 4 // 100}
    if reason:
        r["StatusReason"] = reason
    if rollback:
        r["RollbackDetails"] = rollback
    return {"InstanceRefreshes": [r]}


def expect_describe(stub, answer):
    stub.add_response("describe_instance_refreshes", answer,
                      {"AutoScalingGroupName": ASG, "InstanceRefreshIds": [REFRESH_ID]})


def test_request_is_launch_before_terminate_with_rollback_checkpoints_and_bake(refresh_module):
    req = refresh_module.build_request(ASG, "cinemo-edge-public", "7", OPTS)
    prefs = req["Preferences"]
    assert req["DesiredConfiguration"] == {
        "LaunchTemplate": {"LaunchTemplateName": "cinemo-edge-public", "Version": "7"}}
    assert prefs["MinHealthyPercentage"] == 100 and prefs["MaxHealthyPercentage"] == 200
    assert prefs["AutoRollback"] is True
    assert prefs["AlarmSpecification"] == {"Alarms": ALARMS}
    assert prefs["CheckpointPercentages"] == [50, 100] and prefs["CheckpointDelay"] == 300
    assert prefs["BakeTime"] == 600 and prefs["SkipMatching"] is True and prefs["InstanceWarmup"] == 120

    client, stub = stubbed("autoscaling")
    stub.add_response("start_instance_refresh", {"InstanceRefreshId": REFRESH_ID}, req)
    with stub:  # the request passes botocore's validation of the real API model
        assert refresh_module.start_refresh(client, req) == REFRESH_ID
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("version,opts,message", [
    ("$Latest", {}, "version number"),
    ("3", {"checkpoint_percentages": [50, 80]}, "end at 100"),
    ("3", {"checkpoint_percentages": [60, 30, 100]}, "ascending"),
    ("3", {"min_healthy_percentage": 100, "max_healthy_percentage": 100}, "launch-before-terminate"),
    ("3", {"alarms": []}, "alarms"),
])
def test_bad_requests_are_refused_before_calling_aws(refresh_module, version, opts, message):
    with pytest.raises(refresh_module.RefreshError, match=message):
        refresh_module.build_request(ASG, "lt", version, {**OPTS, **opts})


def test_success(refresh_module):
    client, stub = stubbed("autoscaling")
    clock = FakeClock()
    expect_describe(stub, refresh("Pending"))
    expect_describe(stub, refresh("InProgress", 25))
    expect_describe(stub, refresh("InProgress", 100))
    expect_describe(stub, refresh("Baking", 100, "Waiting for bake time"))
    expect_describe(stub, refresh("Successful", 100))
    lines = []
    with stub:
        result = refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, 3600, 15, sleep=clock.sleep,
                                                 clock=clock.clock, report=lines.append)
    stub.assert_no_pending_responses()
    assert result["status"] == "Successful" and not result["timed_out"]
    assert [h["status"] for h in result["history"]] == ["Pending", "InProgress", "InProgress", "Baking", "Successful"]
    assert clock.sleeps == [15, 15, 15, 15]
    assert "Successful 100%" in lines[-1]


def test_checkpoint_pause_then_success(refresh_module):
    client, stub = stubbed("autoscaling")
    clock = FakeClock()
    checkpoint = "Waiting for the checkpoint delay of 300 seconds to complete (50% of instances replaced)."
    expect_describe(stub, refresh("InProgress", 25))
    expect_describe(stub, refresh("InProgress", 50, checkpoint))
    expect_describe(stub, refresh("InProgress", 50, checkpoint))  # unchanged: not reported twice
    expect_describe(stub, refresh("InProgress", 75))
    expect_describe(stub, refresh("Successful", 100))
    lines = []
    with stub:
        result = refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, 3600, 60, sleep=clock.sleep,
                                                 clock=clock.clock, report=lines.append)
    assert result["status"] == "Successful"
    assert [h["checkpoint"] for h in result["history"]] == [False, True, False, False]
    assert sum("[checkpoint: baking]" in line for line in lines) == 1
    assert "50%" in lines[1] and "checkpoint delay" in lines[1]


def test_alarm_triggered_rollback_fails_with_the_reason(refresh_module):
    client, stub = stubbed("autoscaling")
    clock = FakeClock()
    reason = "Instance refresh was rolled back: alarm cinemo-edge-deploy-5xx is in ALARM state"
    expect_describe(stub, refresh("InProgress", 50))
    expect_describe(stub, refresh("RollbackInProgress", 50, "Rollback in progress",
                                  {"RollbackReason": reason, "PercentageCompleteOnRollback": 50}))
    expect_describe(stub, refresh("RollbackSuccessful", 100, "Rolled back",
                                  {"RollbackReason": reason, "PercentageCompleteOnRollback": 50}))
    with stub, pytest.raises(refresh_module.RefreshError) as err:
        refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, 3600, 15, sleep=clock.sleep, clock=clock.clock)
    assert "RollbackSuccessful" in str(err.value) and "cinemo-edge-deploy-5xx" in str(err.value)
    assert err.value.result["status"] == "RollbackSuccessful"
    assert err.value.result["history"][1]["status"] == "RollbackInProgress"


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "RollbackFailed"])
def test_other_endings_fail(refresh_module, status):
    client, stub = stubbed("autoscaling")
    expect_describe(stub, refresh(status, 10, f"ended {status}"))
    with stub, pytest.raises(refresh_module.RefreshError, match=status):
        refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, 60, 15, sleep=lambda s: None)


def test_timeout_rolls_back_and_fails(refresh_module):
    client, stub = stubbed("autoscaling")
    clock = FakeClock()
    for _ in range(5):  # 0, 30, 60, 90, 120 s: the last one is at the timeout
        expect_describe(stub, refresh("InProgress", 25, "Waiting for instances to warm up"))
    stub.add_response("rollback_instance_refresh", {"InstanceRefreshId": REFRESH_ID}, {"AutoScalingGroupName": ASG})
    with stub, pytest.raises(refresh_module.RefreshError) as err:
        refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, wait_timeout=120, poll_interval=30,
                                        timeout_action="rollback", sleep=clock.sleep, clock=clock.clock)
    stub.assert_no_pending_responses()
    assert err.value.result["timed_out"] is True
    assert "after 120s" in str(err.value) and "rollback requested" in str(err.value)


def test_timeout_can_leave_the_refresh_alone(refresh_module):
    client, stub = stubbed("autoscaling")
    clock = FakeClock()
    expect_describe(stub, refresh("InProgress", 25))
    expect_describe(stub, refresh("InProgress", 25))
    with stub, pytest.raises(refresh_module.RefreshError, match="left running"):
        refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, wait_timeout=10, poll_interval=10,
                                        timeout_action="none", sleep=clock.sleep, clock=clock.clock)
    stub.assert_no_pending_responses()  # no cancel, no rollback


def test_a_refresh_already_running_is_a_clear_error(refresh_module):
    client, stub = stubbed("autoscaling")
    stub.add_client_error("start_instance_refresh", service_error_code="InstanceRefreshInProgress",
                          service_message="An Instance Refresh is already in progress")
    req = refresh_module.build_request(ASG, "cinemo-edge-public", "3", OPTS)
    with stub, pytest.raises(refresh_module.RefreshError, match="already running.*cancel-instance-refresh"):
        refresh_module.start_refresh(client, req)


def test_the_heartbeat_goes_on_while_the_refresh_runs(refresh_module):
    """The deploy-in-progress alarm stays in ALARM only while beats arrive at
    least once a minute: the module beats as it polls, at most every 50 s."""
    client, stub = stubbed("autoscaling")
    cloudwatch, cw_stub = stubbed("cloudwatch")
    clock = FakeClock()
    beat = {"Namespace": "Cinemo/Deploy", "MetricData": [{
        "MetricName": "DeployInProgress", "Value": 1.0, "Unit": "Count",
        "Dimensions": [{"Name": "environment", "Value": "edge"}]}]}
    for _ in range(3):  # polls every 15 s for 120 s: beats at 0, 60 and 120 s
        cw_stub.add_response("put_metric_data", {}, beat)
    for _ in range(8):
        expect_describe(stub, refresh("InProgress", 50))
    expect_describe(stub, refresh("Successful", 100))
    heartbeat = refresh_module._heartbeat(
        cloudwatch, {"namespace": "Cinemo/Deploy", "metric": "DeployInProgress", "dimensions": {"environment": "edge"}},
        clock=clock.clock)
    with stub, cw_stub:
        result = refresh_module.wait_for_refresh(client, ASG, REFRESH_ID, poll_interval=15, sleep=clock.sleep,
                                                 clock=clock.clock, heartbeat=heartbeat)
    assert result["status"] == "Successful"
    stub.assert_no_pending_responses()
    cw_stub.assert_no_pending_responses()
