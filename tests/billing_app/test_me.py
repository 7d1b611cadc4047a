from billing_app.catalog import Role


def test_me_lists_role_and_actions_with_limits(workspace, api_as):
    # given an L2 agent of the workspace
    client = api_as(workspace, Role.L2)

    # when they ask who they are
    response = client.get("/api/v1/me/")

    # then the role and the credit limit of the matrix come back
    assert response.status_code == 200
    body = response.json()
    assert body["role"]["key"] == "l2"
    credit = next(a for a in body["actions"] if a["kind"] == "apply_credit")
    assert credit["mode"] == "direct"
    assert credit["limit"] == 10_000
    assert credit["limit_display"] == "$100.00"
    refund = next(a for a in body["actions"] if a["kind"] == "issue_refund")
    assert refund["mode"] == "request_approval"


def test_me_without_token_is_401_with_www_authenticate(db, client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_rejected_after_role_change(workspace, sign_in, client):
    membership, token = sign_in(workspace, Role.L1, agent_id="42")
    sign_in(workspace, Role.MANAGER, agent_id="42")  # role changes: version bumps
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
