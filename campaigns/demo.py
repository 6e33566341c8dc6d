"""The demo account the start script prints the login of (``flask create-demo``).

Here rather than in core: it uses accounts, subscribers and campaigns, and core imports no
domain package. campaigns.views adds the command when the app factory registers it.
"""

from __future__ import annotations

import click
from sqlalchemy import select

from accounts import services as accounts
from accounts.models import User
from campaigns import senders
from campaigns import services as campaigns
from core import db
from subscribers import services as subscribers


def create_demo(email: str, password: str) -> bool:
    """Create a demo account with a list, three contacts and a draft; False if it exists."""
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        return False
    account, _user = accounts.sign_up(
        "Demo Organisation", "Demo Marketer", email, password, of_age=True
    )
    accounts.update_general_settings(account.id, account.name, "1 Example Street\n1000 Sampletown")
    newsletter = subscribers.create_list(account.id, "Newsletter", "Monthly news")
    for address, name in [
        ("ada@example.org", "Ada"),
        ("grace@example.net", "Grace"),
        ("linus@example.com", "Linus"),
    ]:
        subscribers.add_contact_to_list(account.id, newsletter.id, address, name)
    senders.add_sender(account.id, "news@example.com", "Demo Organisation", verified=True)
    campaigns.save_campaign(
        account.id,
        campaign_id=None,
        name="Welcome",
        subject="Welcome to our newsletter",
        from_name="Demo Organisation",
        from_email="news@example.com",
        html_body=(
            "<html><body><h1>Hello!</h1><p>Thanks for subscribing. Read "
            '<a href="https://example.com/blog">our blog</a>.</p></body></html>'
        ),
        list_id=newsletter.id,
    )
    return True


@click.command("create-demo")
@click.option("--email", default="demo@example.com", show_default=True)
@click.option("--password", default="demo-password", show_default=True)
def create_demo_command(email: str, password: str) -> None:
    """Create a demo account with a list and a draft campaign (idempotent)."""
    created = create_demo(email, password)
    click.echo(("created" if created else "exists") + f": log in as {email} / {password}")
