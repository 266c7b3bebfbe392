"""The first deploy of a stack whose hosts require internal TLS: provision.yml
publishes the TLS files from the vault before it starts any host, and stops,
saying which files and how to make them, when one is missing, instead of
starting hosts that refuse to start and restart in a loop. The internal
tier's certificate names a name known before the NLB exists."""

from stack_helpers import play

FILES = {"internal": ["server.crt", "server.key", "client-ca.crt"], "public": ["client.crt", "client.key", "internal-ca.crt"]}
FACTS = {"load_balancers_internal_dns_name": "internal.edge.cinemo.internal", "load_balancers_public_keep_alive": 180,
         "database_storage_type": "postgres", "database_storage_url": "postgres://cinemo:x@db:5432/cinemo"}


def secrets(skip=()):
    return [{"mode": m, "kind": "tls", "name": f, "value": f"test-{f}"} for m, fs in FILES.items() for f in fs
            if f not in skip]


def test_a_missing_tls_file_stops_provision_before_any_host(moto, tmp_path):
    done = play(moto, "edge", "ssm_parameters.yml", {**FACTS, "ssm_parameters_secrets": secrets(skip=["server.crt"])},
                tmp_path, check=False)
    assert done.returncode != 0
    assert "/cinemo/edge/internal/tls/ lacks ['server.crt']" in done.stdout
    assert "internal.edge.cinemo.internal" in done.stdout and "ansible/tools/pki.sh" in done.stdout


def test_with_every_file_in_the_vault_provision_goes_on(moto, tmp_path):
    play(moto, "edge", "ssm_parameters.yml", {**FACTS, "ssm_parameters_secrets": secrets()}, tmp_path)
    # the next run needs no secret from the vault: what SSM holds counts
    play(moto, "edge", "ssm_parameters.yml", {**FACTS, "ssm_parameters_secrets": []}, tmp_path)
