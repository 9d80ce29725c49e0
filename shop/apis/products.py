"""The public catalogue."""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny

from shop.models import Order
from shop.selectors import product_list

# Products carry no currency of their own: the shop sells in the one currency its orders use.
SHOP_CURRENCY = Order._meta.get_field("currency").default


class ProductListApi(GenericAPIView):
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="Product")
    class OutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        name = serializers.CharField()
        description = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        currency = serializers.SerializerMethodField()
        stock = serializers.IntegerField()

        def get_currency(self, product) -> str:
            return SHOP_CURRENCY

    @extend_schema(
        operation_id="products_list",
        summary="List the products",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request):
        page = self.paginate_queryset(product_list())
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
