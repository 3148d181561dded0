"""Webhook endpoints: where the outbox's events are delivered, signed (admin scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from prorata.services import webhooks
from prorata.web.deps import Admin, AdminRead
from prorata.web.schemas import EndpointBody, EndpointPatch, RotateBody

router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])


@router.get("", summary="Webhook endpoints")
def list_endpoints(call: AdminRead) -> dict:
    return {"items": webhooks.list_endpoints(call.engine, call.principal, at=call.at)}


@router.post("", status_code=201, summary="Add an endpoint (its secret is shown once)")
def create_endpoint(body: EndpointBody, call: Admin) -> dict:
    return webhooks.create_endpoint(
        call.engine,
        call.principal,
        url=body.url,
        topics=body.topics,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.get("/{endpoint}", summary="An endpoint")
def get_endpoint(endpoint: int, call: AdminRead) -> dict:
    return webhooks.get_endpoint(call.engine, call.principal, endpoint, at=call.at)


@router.patch("/{endpoint}", summary="Change an endpoint's URL, topics or state")
def update_endpoint(endpoint: int, body: EndpointPatch, call: Admin) -> dict:
    return webhooks.update_endpoint(
        call.engine,
        call.principal,
        endpoint,
        url=body.url,
        topics=body.topics,
        active=body.active,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.delete("/{endpoint}", summary="Deactivate an endpoint (its log stays)")
def delete_endpoint(endpoint: int, call: Admin) -> dict:
    return webhooks.delete_endpoint(
        call.engine, call.principal, endpoint, at=call.at, key=call.key, request_id=call.request_id
    )


@router.post(
    "/{endpoint}/rotate-secret",
    summary="A new secret; the old one keeps signing during the overlap",
)
def rotate_secret(endpoint: int, body: RotateBody, call: Admin) -> dict:
    return webhooks.rotate_secret(
        call.engine,
        call.principal,
        endpoint,
        overlap_seconds=body.overlap_seconds,
        at=call.at,
        key=call.key,
        request_id=call.request_id,
    )


@router.get("/{endpoint}/deliveries", summary="The delivery log, newest first")
def list_deliveries(
    endpoint: int, call: AdminRead, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict:
    return {
        "items": webhooks.list_deliveries(
            call.engine, call.principal, endpoint, at=call.at, limit=limit
        )
    }
