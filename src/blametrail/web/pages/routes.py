"""HTML pages: one router that gathers the page modules (auth, incidents, postmortems, settings, integrations,
drafting model and template)."""

from fastapi import APIRouter

from blametrail.web.pages import (
    account,
    action_items,
    analytics,
    auth,
    connections,
    customer,
    document,
    evidence,
    history,
    incidents,
    model,
    monitors,
    outbound,
    people,
    postmortems,
    review,
    search,
    settings,
    slack,
    summary,
    template,
    vendor_pages,
    webhooks,
)

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(account.router)
router.include_router(incidents.router)
router.include_router(summary.router)
router.include_router(slack.router)
router.include_router(postmortems.router)
router.include_router(customer.router)
router.include_router(document.router)
router.include_router(history.router)
router.include_router(review.router)
router.include_router(review.comments_router)
router.include_router(action_items.router)
router.include_router(settings.router)
router.include_router(monitors.router)
router.include_router(webhooks.router)
router.include_router(connections.router)
router.include_router(evidence.router)
router.include_router(people.router)
router.include_router(model.router)
router.include_router(template.router)
router.include_router(vendor_pages.router)
router.include_router(outbound.router)
router.include_router(search.router)
router.include_router(analytics.router)
