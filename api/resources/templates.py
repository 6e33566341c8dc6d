"""Reusable templates (campaigns.template_library, as the Templates pages)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import Strict, Timestamp
from api.spec import check_if_match, operation
from api.v1 import v1
from campaigns import queries, template_library
from campaigns.models import Template
from core.auth import api_caller
from core.permissions import Permission

TAGS = ("templates",)


class TemplateIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field("", max_length=500)
    html_body: str = Field("", max_length=1_000_000)
    text_body: str = Field("", max_length=1_000_000)


class TemplateOut(BaseModel):
    id: int
    name: str
    subject: str
    html_body: str
    text_body: str
    created_at: Timestamp

    @classmethod
    def of(cls, template: Template) -> TemplateOut:
        return cls(
            id=template.id,
            name=template.name,
            subject=template.subject,
            html_body=template.html_body,
            text_body=template.text_body,
            created_at=template.created_at,
        )


class TemplatePage(BaseModel):
    items: list[TemplateOut]


@v1.get("/templates")
@operation(Permission.MANAGE_TEMPLATES, TemplatePage, tags=TAGS)
def list_templates() -> TemplatePage:
    """The account's templates."""
    return TemplatePage(
        items=[TemplateOut.of(t) for t in queries.templates(api_caller().account_id)]
    )


@v1.post("/templates")
@operation(Permission.MANAGE_TEMPLATES, TemplateOut, status=201, creates=True, tags=TAGS)
def create_template(json: TemplateIn) -> tuple[TemplateOut, int]:
    """Save a template (subject and bodies must compile in the sandbox)."""
    made = template_library.save_template(
        api_caller().account_id,
        template_id=None,
        name=json.name,
        subject=json.subject,
        html_body=json.html_body,
        text_body=json.text_body,
    )
    return TemplateOut.of(made), 201


@v1.get("/templates/<int:template_id>")
@operation(Permission.MANAGE_TEMPLATES, TemplateOut, etag=True, tags=TAGS)
def get_template(template_id: int) -> TemplateOut:
    """Read a template."""
    return TemplateOut.of(template_library.get_template(api_caller().account_id, template_id))


@v1.put("/templates/<int:template_id>")
@operation(Permission.MANAGE_TEMPLATES, TemplateOut, etag=True, tags=TAGS)
def replace_template(template_id: int, json: TemplateIn) -> TemplateOut:
    """Replace a template's name, subject and bodies."""
    account_id = api_caller().account_id
    check_if_match(TemplateOut.of(template_library.get_template(account_id, template_id)))
    saved = template_library.save_template(
        account_id,
        template_id=template_id,
        name=json.name,
        subject=json.subject,
        html_body=json.html_body,
        text_body=json.text_body,
    )
    return TemplateOut.of(saved)


@v1.delete("/templates/<int:template_id>")
@operation(Permission.MANAGE_TEMPLATES, None, status=204, etag=True, tags=TAGS)
def delete_template(template_id: int) -> tuple[str, int]:
    """Delete a template (campaigns made from it keep their copy)."""
    account_id = api_caller().account_id
    check_if_match(TemplateOut.of(template_library.get_template(account_id, template_id)))
    template_library.delete_template(account_id, template_id)
    return "", 204
