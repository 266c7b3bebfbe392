"""cinemo_deploy_heartbeat: the rollout publishes its heartbeat and waits until
the deploy-in-progress alarm is in ALARM (so the outage alarm is suppressed)
before any instance is replaced; it gives up, loudly, when the alarm never
gets there."""

from conftest import FakeClock, load_module, stubbed

ALARM = "cinemo-edge-deploy-in-progress"
BEAT = {"Namespace": "Cinemo/Deploy", "MetricData": [{
    "MetricName": "DeployInProgress", "Value": 1.0, "Unit": "Count",
    "Dimensions": [{"Name": "environment", "Value": "edge"}]}]}


def alarm(state):
    return {"MetricAlarms": [{"AlarmName": ALARM, "StateValue": state}]}


def run(answers, wait_timeout=300):
    module = load_module("rollout", "cinemo_deploy_heartbeat")
    cw, stub = stubbed("cloudwatch")
    clock = FakeClock()
    heartbeat = module.Heartbeat(cw, "Cinemo/Deploy", "DeployInProgress", {"environment": "edge"}, clock=clock.clock)
    beats = 0
    for i, state in enumerate(answers):
        if i * 10 - beats * 50 >= 0:  # a beat on the first poll, then every 50 s (polls are 10 s apart)
            stub.add_response("put_metric_data", {}, BEAT)
            beats += 1
        stub.add_response("describe_alarms", alarm(state), {"AlarmNames": [ALARM], "AlarmTypes": ["MetricAlarm"]})
    with stub:
        result = module.wait_for_alarm(cw, heartbeat, ALARM, wait_timeout=wait_timeout, poll_interval=10,
                                       sleep=clock.sleep, clock=clock.clock)
    stub.assert_no_pending_responses()
    return result


def test_waits_for_the_alarm_while_beating():
    # CloudWatch takes about two minutes to see the first beat
    assert run(["OK"] * 12 + ["ALARM"]) == ("ALARM", 120)


def test_gives_up_at_the_timeout_with_the_state_it_saw():
    assert run(["INSUFFICIENT_DATA"] * 7, wait_timeout=60) == ("INSUFFICIENT_DATA", 60)
