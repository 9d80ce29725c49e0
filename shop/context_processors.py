def cart_summary(request):
    return {}
