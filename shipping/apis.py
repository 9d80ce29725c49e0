"""Shipping's REST API: staff look up shipments. Orders are known only by the id the events carry."""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAdminUser

from shipping.models import Shipment
from shipping.selectors import shipment_list
from config.api_errors import error_responses


class ShipmentListApi(GenericAPIView):
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        order = serializers.IntegerField(required=False, min_value=1, help_text="The shop's order id.")

    @extend_schema_serializer(component_name="Shipment")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        order_id = serializers.IntegerField()
        order_number = serializers.CharField()
        status = serializers.ChoiceField(choices=Shipment.Status.choices)
        tracking_number = serializers.CharField()
        recipient_name = serializers.CharField()
        city = serializers.CharField()
        postal_code = serializers.CharField()
        country = serializers.CharField()
        item_count = serializers.IntegerField()
        label_url = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()
        cancelled_at = serializers.DateTimeField(allow_null=True)
        cancelled_before_purchase = serializers.BooleanField()

        def get_label_url(self, shipment) -> str | None:
            if not shipment.label:
                return None
            return self.context["request"].build_absolute_uri(shipment.label.url)

    @extend_schema(
        operation_id="shipping_shipments_list",
        summary="List shipments (staff)",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(shipment_list(order_id=filters.validated_data.get("order")))
        return self.get_paginated_response(self.OutputSerializer(page, many=True, context={"request": request}).data)
