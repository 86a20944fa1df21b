"""The bookstore walk-through: `python -m examples.bookstore stock|ship|show`."""

from __future__ import annotations

import click

from examples.bookstore import Inventory, Order, domain
from pgstore.repository import NotFound


@click.group()
def main() -> None:
    """Try the bookstore example (run `pgstore migrate` first)."""


@main.command()
@click.argument("book_id")
@click.argument("in_stock", type=int)
def stock(book_id: str, in_stock: int) -> None:
    """Put IN_STOCK copies of BOOK_ID in the inventory."""
    repository = domain.repository_for(Inventory)
    try:
        product = repository.find_by(book_id=book_id)
        product.in_stock = in_stock
    except NotFound:
        product = Inventory(book_id=book_id, in_stock=in_stock)
    repository.add(product)
    click.echo(f"book {book_id}: {product.in_stock} in stock")


@main.command()
@click.argument("book_id")
@click.argument("quantity", type=int)
def ship(book_id: str, quantity: int) -> None:
    """Place an order for QUANTITY copies of BOOK_ID and ship it (raises OrderShipped)."""
    order = Order(book_id=book_id, quantity=quantity, total_amount=quantity * 10)
    order.ship_order()
    domain.repository_for(Order).add(order)
    click.echo(f"order {order.id}: shipped {quantity} of book {book_id}")


@main.command()
@click.argument("book_id")
def show(book_id: str) -> None:
    """Print the stock level of BOOK_ID."""
    product = domain.repository_for(Inventory).find_by(book_id=book_id)
    click.echo(f"book {book_id}: {product.in_stock} in stock")


if __name__ == "__main__":
    main()
