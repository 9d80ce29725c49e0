from shop.cart import Cart


def cart_summary(request):
    """`cart_count`: how many items the session cart holds, for the header's "Cart (n)"."""
    session = getattr(request, "session", None)
    return {"cart_count": len(Cart(session)) if session is not None else 0}
