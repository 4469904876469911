"""The synthetic catalogue: categories, product groups and families, names, the products frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Category:
    """One category's look: demand shape, price range and the words its product names use."""

    name: str
    share: float  # of product groups
    weekly: tuple[float, ...]  # log demand shift Monday..Sunday, before per-product jitter
    price_range: tuple[float, float]  # regular price of the smallest size, log-uniform
    summer_uplift: tuple[float, float]  # multiplicative uplift at mid-July, uniform
    nouns: tuple[str, ...]
    sizes: tuple[str, str, str]  # size labels, smallest first


CATEGORIES = (
    Category(
        "beverages", 0.20, (-0.10, -0.10, -0.05, 0.0, 0.10, 0.25, 0.10), (0.8, 3.5), (0.3, 0.7),
        ("Sparkling water", "Still water", "Orange juice", "Apple juice", "Cola", "Iced tea",
         "Lemonade", "Energy drink", "Cold brew coffee", "Ginger beer"),
        ("330ml", "1L", "2L"),
    ),
    Category(
        "snacks", 0.20, (-0.10, -0.10, -0.05, 0.0, 0.12, 0.25, 0.08), (1.0, 5.0), (0.0, 0.0),
        ("Salted crisps", "Paprika crisps", "Tortilla chips", "Salted peanuts", "Pretzels",
         "Chocolate cookies", "Oat biscuits", "Popcorn", "Trail mix", "Rice cakes"),
        ("100g", "200g", "400g"),
    ),
    Category(
        "household", 0.15, (0.05, 0.0, 0.0, 0.0, 0.02, 0.10, -0.05), (2.0, 15.0), (0.0, 0.0),
        ("Dish soap", "Laundry liquid", "Kitchen towels", "Toilet paper", "Bin bags",
         "Glass cleaner", "Sponges", "Fabric softener", "Bleach", "Aluminium foil"),
        ("1-pack", "3-pack", "6-pack"),
    ),
    Category(
        "personal_care", 0.15, (0.02, 0.0, 0.0, 0.0, 0.03, 0.08, -0.03), (2.0, 15.0), (0.0, 0.0),
        ("Shampoo", "Conditioner", "Shower gel", "Toothpaste", "Hand soap", "Deodorant",
         "Body lotion", "Mouthwash", "Face cream", "Sunscreen"),
        ("50ml", "250ml", "500ml"),
    ),
    Category(
        "frozen", 0.12, (-0.08, -0.08, -0.04, 0.0, 0.08, 0.20, 0.12), (2.0, 12.0), (0.3, 0.8),
        ("Pepperoni pizza", "Vanilla ice cream", "Garden peas", "Fish fingers",
         "Chicken nuggets", "Berry mix", "French fries", "Spinach", "Chocolate ice cream",
         "Veggie burgers"),
        ("400g", "1kg", "2kg"),
    ),
    Category(
        "fresh", 0.18, (-0.05, -0.08, -0.05, 0.0, 0.10, 0.20, -0.10), (1.0, 10.0), (0.0, 0.15),
        ("Greek yoghurt", "Cheddar", "Butter", "Cream cheese", "Hummus", "Mozzarella", "Bananas",
         "Tomatoes", "Apples", "Smoked salmon"),
        ("250g", "500g", "1kg"),
    ),
)  # fmt: skip
_BRANDS = ("Northfield", "Brightwell", "Cedar & Co", "Harbour", "Green Valley", "Maple", "Summit",
           "Riverside", "Oakridge", "Bluebell", "Value")  # fmt: skip

# Quantity of each size tier relative to the smallest; price grows as quantity ** 0.75, so a larger
# size costs more in total but less per unit.
_SIZE_QUANTITY = np.array([1.0, 2.5, 5.0])
_SIZE_PRICE_EXPONENT = 0.75
# A group is a family (2-3 sizes) with this probability: ~30% of products end up in families.
_FAMILY_GROUP_PROB = 0.15
_KVI_SHARE = 0.10


@dataclass(frozen=True)
class Catalogue:
    """The drawn catalogue, as arrays in product order."""

    category: np.ndarray  # [P] index into CATEGORIES
    group: np.ndarray  # [P] product group (a family or a single product)
    size_rank: np.ndarray  # [P] 1 = smallest; 0 for products outside families
    family_id: list[str | None]
    name: list[str]
    start_price: np.ndarray  # [P] regular price before rounding to shelf endings
    fixed_price: np.ndarray  # [P] bool: the price never changes, no promotions

    @property
    def n_groups(self) -> int:
        """Number of product groups (families and single products)."""
        return int(self.group[-1]) + 1


def _draw_groups(rng: np.random.Generator, n_products: int) -> tuple[np.ndarray, np.ndarray]:
    """Group index and rank within the group (1-based) of each product, in product order."""
    sizes = np.where(rng.random(n_products) < _FAMILY_GROUP_PROB, rng.integers(2, 4, n_products), 1)
    group = np.repeat(np.arange(n_products), sizes)[:n_products]
    first = np.cumsum(sizes) - sizes
    return group, np.arange(n_products) - first[group] + 1


def draw_catalogue(
    rng: np.random.Generator, n_products: int, fixed_price_share: float
) -> Catalogue:
    """Categories, families (sizes priced by quantity), names and fixed-price groups."""
    group, rank = _draw_groups(rng, n_products)
    n_groups = int(group[-1]) + 1
    members = np.bincount(group)[group]  # the last group may have been cut short
    in_family = members > 1
    shares = np.array([c.share for c in CATEGORIES])
    g_category = rng.choice(len(CATEGORIES), size=n_groups, p=shares / shares.sum())
    g_noun = rng.integers(0, 10, n_groups)
    g_brand = rng.integers(0, len(_BRANDS), n_groups)
    # Families of two take sizes 1-2 or 2-3; single products get any size.
    g_size_offset = rng.integers(0, 2, n_groups)
    size = np.where(in_family, rank - 1 + (members == 2) * g_size_offset[group], 0)
    size = np.where(in_family, size, rng.integers(0, 3, n_products))
    lo, hi = np.log([[c.price_range[k] for c in CATEGORIES] for k in (0, 1)])
    g_price = np.exp(rng.uniform(lo[g_category], hi[g_category]))
    category = g_category[group]
    family_number = np.cumsum(in_family & (rank == 1))
    return Catalogue(
        category=category,
        group=group,
        size_rank=np.where(in_family, rank, 0),
        family_id=[
            f"F{n:05d}" if f else None for n, f in zip(family_number, in_family, strict=True)
        ],
        name=_names(category, g_brand[group], g_noun[group], size),
        start_price=g_price[group] * _SIZE_QUANTITY[size] ** _SIZE_PRICE_EXPONENT,
        fixed_price=(rng.random(n_groups) < fixed_price_share)[group],
    )


def _names(
    category: np.ndarray, brand: np.ndarray, noun: np.ndarray, size: np.ndarray
) -> list[str]:
    """Readable names such as 'Brightwell sparkling water 1L'; repeats get ' (2)', ' (3)'..."""
    seen: dict[str, int] = {}
    names = []
    for c, b, n, s in zip(category, brand, noun, size, strict=True):
        cat = CATEGORIES[c]
        name = f"{_BRANDS[b]} {cat.nouns[n].lower()} {cat.sizes[s]}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def category_names(category: np.ndarray) -> list[str]:
    """Category names of category indices."""
    return [CATEGORIES[c].name for c in category]


def product_ids(n_products: int) -> pl.Series:
    """P00001, P00002, ...: zero-padded so ids sort like numbers."""
    width = max(5, len(str(n_products)))
    return pl.Series("product_id", [f"P{i:0{width}d}" for i in range(1, n_products + 1)])


def products_frame(
    rng: np.random.Generator,
    ids: pl.Series,
    catalogue: Catalogue,
    regular: np.ndarray,
    current: np.ndarray,
    launched_on: np.ndarray,
) -> pl.DataFrame:
    """The `products` contract table: costs, guardrails around the regular price, KVI flags.

    Args:
        rng: the world's base stream (draws cost shares and KVI flags).
        ids: product ids.
        catalogue: the drawn catalogue.
        regular: [P] regular price on the last day.
        current: [P] price paid on the last day (a promotional price if a promotion runs).
        launched_on: [P] datetime64[D] first sales day.
    """
    n = ids.len()
    cost_share = rng.uniform(0.35, 0.70, catalogue.n_groups)[catalogue.group]
    # The guardrails always contain the current price, even when the history ends in a promotion.
    return pl.DataFrame(
        {
            "product_id": ids,
            "name": catalogue.name,
            "category": category_names(catalogue.category),
            "family_id": pl.Series(catalogue.family_id, dtype=pl.String),
            "size_rank": pl.Series(catalogue.size_rank, dtype=pl.Int32),
            "unit_cost": np.round(cost_share * regular, 2),
            "current_price": current,
            "min_price": np.round(np.minimum(0.7 * regular, current), 2),
            "max_price": np.round(np.maximum(1.5 * regular, current), 2),
            "is_active": np.ones(n, dtype=bool),
            "is_kvi": rng.random(n) < _KVI_SHARE,
            "launched_on": pl.Series(launched_on, dtype=pl.Date),
        }
    ).with_columns(size_rank=pl.when(pl.col("size_rank") > 0).then(pl.col("size_rank")))
