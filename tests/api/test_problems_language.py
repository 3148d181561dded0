"""Errors as application/problem+json (RFC 9457) and their language, on SQLite and PostgreSQL:
the fields of a problem, Accept-Language with q-values, validation errors naming the field,
unknown routes and methods, and the policy's refusals with the spec's codes in fr and en.
"""

from __future__ import annotations

from sqlalchemy import func, select

from prorata.adapters import schema as t
from tests.api.test_resources import contract_tenant

PROBLEM = "application/problem+json"
TYPE = "https://prorata.dev/problems/"


def problem(response, status: int, code: str, language: str = "en") -> dict:
    """The problem in ``response``, checked for its media type, fields and language."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["content-language"] == language
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == TYPE + code
    assert body["title"] == code.replace("_", " ").capitalize()
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "params",
        "errors",
    }
    return body


def written(engine) -> tuple[int, ...]:
    with engine.connect() as connection:
        return tuple(
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (t.documents, t.orders, t.subscription_terms, t.idempotency_keys)
        )


LANGUAGES = [
    (None, "en"),
    ("", "en"),
    ("en", "en"),
    ("en-US", "en"),
    ("fr", "fr"),
    ("fr-CA", "fr"),
    ("FR", "fr"),
    ("de", "en"),
    ("de, fr;q=0.8", "fr"),
    ("en;q=0.5, fr", "fr"),
    ("fr;q=0.4, en;q=0.9", "en"),
    ("fr;q=0, en", "en"),
    ("fr;q=0", "en"),
    ("*", "en"),
    ("de, *;q=0.5, fr;q=0.1", "en"),
    ("es;q=0.9, fr;q=0.8, en;q=0.7", "fr"),
    ("fr;q=nonsense, en;q=0.1", "en"),
]


def test_a_problem_carries_every_field_in_the_negotiated_language(api):
    response = api.client.get("/v1/subscriptions/nope", headers=api.headers("owner"))
    assert problem(response, 404, "not_found") == {
        "type": "https://prorata.dev/problems/not_found",
        "title": "Not found",
        "status": 404,
        "detail": "Subscription nope does not exist.",
        "code": "not_found",
        "instance": "/v1/subscriptions/nope",
        "params": {"kind": "subscription", "id": "nope"},
    }
    sentences = {
        "en": "Subscription nope does not exist.",
        "fr": "L'abonnement nope n'existe pas.",
    }
    for header, language in LANGUAGES:
        extra = {} if header is None else {"Accept-Language": header}
        response = api.client.get("/v1/subscriptions/nope", headers=api.headers("owner", **extra))
        body = problem(response, 404, "not_found", language)
        assert body["detail"] == sentences[language], header


def test_validation_errors_name_the_field_and_write_nothing(api):
    before = written(api.world.engine)
    english = api.headers("owner", **{"Idempotency-Key": "bad-1"})
    french = api.headers("owner", **{"Accept-Language": "fr", "Idempotency-Key": "bad-2"})
    unknown = {"items": [{"subscription": "s1", "quantity": 3, "colour": "red"}]}

    body = problem(
        api.client.post("/v1/checkout", json=unknown, headers=english), 422, "validation_failed"
    )
    assert body["errors"] == [
        {
            "field": "items.0.colour",
            "type": "extra_forbidden",
            "reason": "Extra inputs are not permitted",
        }
    ]
    assert body["detail"] == "items.0.colour: Extra inputs are not permitted"
    body = problem(
        api.client.post("/v1/checkout", json=unknown, headers=french),
        422,
        "validation_failed",
        "fr",
    )
    assert body["errors"] == [
        {"field": "items.0.colour", "type": "extra_forbidden", "reason": "champ inconnu"}
    ]
    assert body["detail"] == "items.0.colour : champ inconnu"

    cases = [
        ("/v1/checkout", {"items": [{"subscription": "s1", "quantity": 0}]}, "items.0.quantity"),
        ("/v1/subscriptions/s1/preview", {"quantity": 0}, "quantity"),
        ("/v1/carts/cart_x/items/s1", {"quantity": 0}, "quantity"),
    ]
    for path, payload, field in cases:
        method = api.client.put if path.startswith("/v1/carts") else api.client.post
        body = problem(method(path, json=payload, headers=french), 422, "validation_failed", "fr")
        assert body["errors"] == [
            {"field": field, "type": "greater_than_equal", "reason": "valeur trop petite"}
        ]
        assert body["detail"] == f"{field} : valeur trop petite"
        body = problem(method(path, json=payload, headers=english), 422, "validation_failed")
        assert body["errors"][0]["reason"] == "Input should be greater than or equal to 1"

    body = problem(
        api.client.post("/v1/checkout", json={}, headers=french), 422, "validation_failed", "fr"
    )
    assert body["errors"] == [
        {"field": "items", "type": "missing", "reason": "champ obligatoire manquant"}
    ]
    body = problem(
        api.client.post("/v1/checkout", json={"items": []}, headers=english),
        422,
        "validation_failed",
    )
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("items", "too_short")]
    body = problem(
        api.client.get("/v1/subscriptions?limit=0", headers=english), 422, "validation_failed"
    )
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("limit", "greater_than_equal")]
    body = problem(api.client.get("/v1/requests/abc", headers=english), 422, "validation_failed")
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("number", "int_parsing")]
    body = problem(
        api.client.put(
            f"/v1/accounts/corp/members/{api.world.users['member']}",
            json={"role": "boss"},
            headers=french,
        ),
        422,
        "validation_failed",
        "fr",
    )
    assert body["errors"] == [
        {"field": "role", "type": "literal_error", "reason": "valeur non permise"}
    ]
    body = problem(
        api.client.post(
            "/v1/checkout",
            content=b'{"items": [',
            headers=english | {"Content-Type": "application/json"},
        ),
        422,
        "validation_failed",
    )
    assert [e["type"] for e in body["errors"]] == ["json_invalid"]
    assert written(api.world.engine) == before


def test_unknown_routes_methods_and_credentials_are_problems(api):
    for headers in (api.headers("owner"), api.headers("none")):
        body = problem(api.client.get("/v1/nope", headers=headers), 404, "not_found")
        assert body["detail"] == "Resource /v1/nope does not exist."
    body = problem(
        api.client.get("/v1/nope/deeper", headers={"Accept-Language": "fr"}), 404, "not_found", "fr"
    )
    assert body["detail"] == "La ressource /v1/nope/deeper n'existe pas."

    response = api.client.delete("/v1/catalog", headers=api.headers("owner"))
    body = problem(response, 405, "method_not_allowed")
    assert body["detail"] == "Method DELETE is not allowed here."
    assert response.headers["allow"] == "GET"
    response = api.client.patch(
        "/v1/subscriptions/s1", json={}, headers=api.headers("owner", **{"Accept-Language": "fr"})
    )
    body = problem(response, 405, "method_not_allowed", "fr")
    assert body["detail"] == "La méthode PATCH n'est pas permise ici."
    assert response.headers["allow"] == "GET"

    response = api.client.get("/v1/catalog", headers={"Accept-Language": "fr"})
    body = problem(response, 401, "unauthenticated", "fr")
    assert body["detail"] == "Authentification requise : envoyez 'Authorization: Bearer <jeton>'."
    assert response.headers["www-authenticate"] == "Bearer"
    body = problem(api.client.get("/v1/catalog"), 401, "unauthenticated")
    assert body["detail"] == "Authentication required: send 'Authorization: Bearer <token>'."
    body = problem(
        api.client.get(
            "/v1/catalog", headers=api.headers("revoked_token", **{"Accept-Language": "fr"})
        ),
        401,
        "token_revoked",
        "fr",
    )
    assert body["detail"] == "Le jeton a été révoqué."
    body = problem(
        api.client.get("/v1/catalog", headers={"Authorization": "Bearer prt_abc_nonsense"}),
        401,
        "invalid_token",
    )
    assert body["detail"] == "The token is not valid."
    body = problem(
        api.client.post(
            "/v1/subscriptions/s1/cancel",
            json={},
            headers=api.headers("read_token", **{"Accept-Language": "fr"}),
        ),
        403,
        "insufficient_scope",
        "fr",
    )
    assert body["detail"] == "Ce jeton n'a pas la portée 'write'."
    assert body["params"] == {"scope": "write"}


def test_policy_refusals_carry_the_spec_code_and_read_in_french(api):
    contract = contract_tenant(api)
    before = written(api.world.engine)
    notice = {
        "en": "Changes must be submitted at least 30 days before the renewal date "
        "(Mar 15, 2024); the contract renews on its current terms.",
        "fr": "Les modifications doivent être soumises au moins 30 jours avant la date de "
        "renouvellement (15 mars 2024) ; le contrat est renouvelé selon ses termes actuels.",
    }
    forbidden = {
        "en": "This policy does not allow a change of billing cycle online; "
        "please contact customer support.",
        "fr": "Cette politique ne permet pas ce changement en ligne (changement de fréquence de "
        "facturation) ; veuillez contacter l'assistance clientèle.",
    }
    for header, language in (("en", "en"), ("fr", "fr"), ("en;q=0.5, fr", "fr"), (None, "en")):
        headers = contract.headers(**({} if header is None else {"Accept-Language": header}))
        # 24 days before the renewal of 15 March: too late to remove users.
        preview = api.client.post(
            "/v1/subscriptions/m1/preview", json={"quantity": 8}, headers=headers
        )
        assert preview.status_code == 200
        assert preview.json() == {
            "subscription": "m1",
            "version": 2,
            "allowed": False,
            "refusal": {"code": "notice_period_passed", "message": notice[language]},
        }
        body = problem(
            api.client.post(
                "/v1/checkout",
                json={"items": [{"subscription": "m1", "quantity": 8}]},
                headers=headers,
            ),
            422,
            "notice_period_passed",
            language,
        )
        assert body["detail"] == notice[language]
        assert body["params"] == {"item": 0, "subscription": "m1"}
        body = problem(
            api.client.post(
                "/v1/checkout",
                json={"items": [{"subscription": "m1", "period": "annual"}]},
                headers=headers,
            ),
            422,
            "change_forbidden",
            language,
        )
        assert body["detail"] == forbidden[language]
    assert written(api.world.engine) == before


def test_service_refusals_in_french(api):
    french = api.headers("owner", **{"Accept-Language": "fr"})
    preview = api.client.post("/v1/subscriptions/s1/preview", json={"quantity": 2}, headers=french)
    assert preview.json()["refusal"] == {
        "code": "no_change",
        "message": "Les conditions demandées sont les conditions actuelles.",
    }
    body = problem(
        api.client.post("/v1/subscriptions/s1/undo", headers=french), 422, "nothing_scheduled", "fr"
    )
    assert body["detail"] == "Rien n'est programmé pour cet abonnement."
    body = problem(
        api.client.post(
            "/v1/checkout", json={"items": [{"subscription": "s1", "plan": "gold"}]}, headers=french
        ),
        400,
        "unknown_plan",
        "fr",
    )
    assert body["detail"] == "Le forfait 'gold' n'est pas au catalogue."
    assert body["params"] == {"plan": "gold"}
    body = problem(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 3}, {"subscription": "s1"}]},
            headers=french,
        ),
        400,
        "duplicate_item",
        "fr",
    )
    assert body["detail"] == (
        "Un panier ne modifie chaque abonnement qu'une fois ; l'abonnement s1 y est déjà."
    )
    users = api.world.users
    for user in ("owner", "member"):
        api.client.post("/v1/subscriptions/s1/seats", json={"user": users[user]}, headers=french)
    body = problem(
        api.client.post(
            "/v1/subscriptions/s1/seats", json={"user": users["billing_contact"]}, headers=french
        ),
        422,
        "no_seat_available",
        "fr",
    )
    assert body["detail"] == (
        "Les 2 postes sont tous attribués ; ajoutez des postes avant d'en attribuer un autre."
    )
    body = problem(
        api.client.post(
            "/v1/checkout", json={"items": [{"subscription": "s1", "quantity": 1}]}, headers=french
        ),
        422,
        "seats_assigned",
        "fr",
    )
    assert body["detail"] == (
        "2 postes sont attribués à des utilisateurs ; libérez-en 1 avant de passer à 1."
    )
    body = problem(
        api.client.delete(f"/v1/accounts/corp/members/{users['owner']}", headers=french),
        409,
        "last_owner",
        "fr",
    )
    assert body["detail"] == (
        f"Le compte corp doit garder un titulaire : l'utilisateur {users['owner']} est le dernier."
    )
    body = problem(api.client.get("/v1/carts/cart_nope", headers=french), 404, "not_found", "fr")
    assert body["detail"] == "Le panier cart_nope n'existe pas."
    body = problem(
        api.client.post("/v1/portal-sessions", json={"user": users["owner"]}, headers=french),
        403,
        "forbidden",
        "fr",
    )
    assert body["detail"] == (
        "Seuls l'assistance du vendeur, les gestionnaires de compte ou les jetons d'API "
        "peuvent ouvrir des sessions du portail."
    )


def test_a_reused_idempotency_key_is_explained_in_the_callers_language(api):
    # Regression: the detail used to be the bare key ("k1"), in every language, no params.
    body = {"items": [{"subscription": "s1", "quantity": 3}]}
    assert (
        api.client.post(
            "/v1/checkout", json=body, headers=api.headers("owner", **{"Idempotency-Key": "k1"})
        ).status_code
        == 200
    )
    other = {"items": [{"subscription": "s1", "quantity": 4}]}
    for language, sentence in (
        (
            "en",
            "Idempotency-Key 'k1' was already used for a different request; use a new key for "
            "a new request.",
        ),
        (
            "fr",
            "La clé Idempotency-Key 'k1' a déjà servi pour une autre requête ; utilisez une "
            "nouvelle clé.",
        ),
    ):
        headers = api.headers("owner", **{"Idempotency-Key": "k1", "Accept-Language": language})
        reused = problem(
            api.client.post("/v1/checkout", json=other, headers=headers),
            422,
            "idempotency_key_reused",
            language,
        )
        assert reused["detail"] == sentence
        assert reused["params"] == {"key": "k1"}


def test_a_refused_role_is_named_in_the_readers_language(api):
    body = {"items": [{"subscription": "s1", "quantity": 3}]}
    for who, language, sentence in (
        ("member", "fr", "En tant que membre du compte corp, vous ne pouvez pas modifier"),
        ("member", "en", "As member of account corp, you may not change its subscriptions"),
    ):
        headers = api.headers(who, **{"Accept-Language": language})
        refused = problem(
            api.client.post("/v1/checkout", json=body, headers=headers), 403, "forbidden", language
        )
        assert refused["detail"].startswith(sentence)
        assert refused["params"] == {"role": "member", "account": "corp"}
