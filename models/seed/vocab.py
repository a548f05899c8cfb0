"""Fixed vocabularies of the synthetic world: names, cities, categories with their odds."""

from __future__ import annotations

import numpy as np

FIRST_NAMES = np.array(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Sandra Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle "
    "Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca "
    "Jason Laura Edward Sharon Jeffrey Cynthia Ryan Kathleen Jacob Amy Gary Angela Nicholas "
    "Shirley Eric Brenda Jonathan Emma Stephen Anna Larry Pamela Justin Nicole Scott Samantha "
    "Brandon Katherine Benjamin Christine Samuel Helen Gregory Debra Alexander Rachel Priya "
    "Wei Mohammed Sofia Diego Aisha Hiroshi Olga Mateo Fatima Chen Lucia Omar Ingrid Rahul".split()
)
LAST_NAMES = np.array(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen "
    "Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez "
    "Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy "
    "Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox "
    "Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price "
    "Patel Shah Kowalski Novak Okafor Yamamoto Schmidt Rossi Dubois Larsen Haddad Silva".split()
)
EMAIL_DOMAINS = np.array(["example.com", "example.net", "example.org", "mail.example"])

# city, price level (x national median budget), share of leads, area code, market heat
CITIES: list[tuple[str, float, float, int, float]] = [
    ("New York, NY", 1.9, 0.07, 212, 0.00),
    ("Los Angeles, CA", 2.0, 0.06, 213, -0.05),
    ("Chicago, IL", 0.9, 0.05, 312, -0.10),
    ("Houston, TX", 0.75, 0.05, 713, 0.10),
    ("Phoenix, AZ", 0.95, 0.04, 602, 0.15),
    ("Philadelphia, PA", 0.8, 0.03, 215, -0.05),
    ("San Antonio, TX", 0.7, 0.03, 210, 0.10),
    ("San Diego, CA", 2.0, 0.03, 619, 0.00),
    ("Dallas, TX", 0.95, 0.05, 214, 0.20),
    ("Austin, TX", 1.2, 0.05, 512, 0.25),
    ("San Jose, CA", 2.6, 0.02, 408, -0.10),
    ("Jacksonville, FL", 0.8, 0.03, 904, 0.10),
    ("Columbus, OH", 0.7, 0.02, 614, 0.05),
    ("Charlotte, NC", 0.9, 0.03, 704, 0.20),
    ("Indianapolis, IN", 0.6, 0.02, 317, 0.00),
    ("San Francisco, CA", 2.8, 0.03, 415, -0.15),
    ("Seattle, WA", 1.8, 0.04, 206, 0.05),
    ("Denver, CO", 1.4, 0.04, 303, 0.05),
    ("Nashville, TN", 1.1, 0.03, 615, 0.20),
    ("Boston, MA", 1.7, 0.03, 617, 0.00),
    ("Portland, OR", 1.3, 0.02, 503, -0.10),
    ("Las Vegas, NV", 1.0, 0.03, 702, 0.05),
    ("Atlanta, GA", 0.95, 0.04, 404, 0.15),
    ("Miami, FL", 1.3, 0.05, 305, 0.10),
    ("Minneapolis, MN", 0.8, 0.02, 612, -0.05),
    ("Tampa, FL", 1.0, 0.03, 813, 0.15),
    ("Raleigh, NC", 1.0, 0.03, 919, 0.20),
    ("Salt Lake City, UT", 1.2, 0.02, 801, 0.05),
    ("Detroit, MI", 0.5, 0.01, 313, -0.20),
    ("Sacramento, CA", 1.3, 0.02, 916, 0.00),
]
CITY_NAMES = np.array([c[0] for c in CITIES])
CITY_PRICE = np.array([c[1] for c in CITIES])
CITY_SHARE = np.array([c[2] for c in CITIES]) / sum(c[2] for c in CITIES)
CITY_AREA = np.array([c[3] for c in CITIES])
CITY_HEAT = np.array([c[4] for c in CITIES])

# category, probability, effect on the latent conversion logit (the learnable signal)
SOURCES: list[tuple[str, float, float]] = [
    ("WEBSITE", 0.24, 0.00),
    ("REFERRAL", 0.11, 1.00),
    ("SOCIAL_MEDIA", 0.16, -0.35),
    ("PORTAL", 0.18, -0.10),
    ("OPEN_HOUSE", 0.06, 0.50),
    ("PAID_ADS", 0.12, -0.25),
    ("COLD_CALL", 0.08, -0.90),
    ("EMAIL_CAMPAIGN", 0.05, -0.30),
]
# None: the lead did not say
TIMELINES: list[tuple[str | None, float, float]] = [
    ("IMMEDIATE", 0.12, 0.90),
    ("WITHIN_3_MONTHS", 0.27, 0.45),
    ("WITHIN_6_MONTHS", 0.25, 0.00),
    ("WITHIN_YEAR", 0.16, -0.40),
    ("BROWSING", 0.12, -1.10),
    (None, 0.08, -0.30),
]
# property type, probability, effect, price level
PROPERTY_TYPES: list[tuple[str | None, float, float, float]] = [
    ("SINGLE_FAMILY", 0.45, 0.10, 1.0),
    ("CONDO", 0.20, 0.00, 0.75),
    ("TOWNHOUSE", 0.14, 0.05, 0.85),
    ("MULTI_FAMILY", 0.08, -0.10, 1.4),
    ("LAND", 0.05, -0.40, 0.5),
    ("COMMERCIAL", 0.05, -0.20, 2.2),
    (None, 0.03, -0.20, 1.0),
]
NATIONAL_MEDIAN_BUDGET = 420_000

STAGES = np.array(["NEW", "CONTACTED", "QUALIFIED", "SHOWING", "OFFER", "WON", "LOST"])
NEW, CONTACTED, QUALIFIED, SHOWING, OFFER, WON, LOST = range(7)

LOST_REASONS = np.array(
    [
        "Chose another agent",
        "Budget does not match the market",
        "Stopped responding",
        "Decided to rent instead",
        "Financing fell through",
        "Postponed the move",
        "Bought directly from owner",
        "Asked not to be contacted",
    ]
)
LEAD_NOTES = np.array(
    [
        "Pre-approved for a mortgage",
        "Needs to sell current home first",
        "Wants a good school district",
        "Relocating for work",
        "Prefers text messages",
        "Looking for a home office",
        "First-time buyer, needs guidance",
        "Interested in new construction",
        "Wants to stay near public transit",
        "Investor: cash flow matters most",
        "Has a dog: needs a yard",
        "Flexible on location, firm on budget",
    ]
)

PERSONALITIES = np.array(["professional", "friendly", "consultative", "energetic", "analytical"])
AI_AGENT_NAMES = np.array(
    [
        "Aria Sales Assistant",
        "Lead Qualifier",
        "Showing Scheduler",
        "Follow-up Bot",
        "Customer Support Bot",
        "Market Analyst",
        "Listing Writer",
        "Open House Concierge",
        "Mortgage Helper",
        "Night Desk",
        "Renewal Nudger",
        "Valuation Bot",
    ]
)
AI_TOPICS = np.array(
    [
        "lead_qualification",
        "follow_up_email",
        "appointment_scheduling",
        "property_matching",
        "market_analysis",
        "call_summary",
        "listing_description",
    ]
)
AI_ERRORS = np.array(
    [
        "Upstream model timed out after 30s",
        "Rate limit exceeded by provider",
        "Invalid phone number for lead",
        "CRM record locked by another process",
        "Context window exceeded",
        "Calendar API returned 503",
    ]
)
CHAT_TOPICS = np.array(
    [
        "property_inquiry",
        "product_inquiry",
        "pricing",
        "scheduling",
        "financing",
        "order_status",
        "technical_support",
    ]
)
CALL_TOPICS = np.array(
    ["initial_contact", "follow_up", "showing_scheduling", "offer_discussion", "financing"]
)
