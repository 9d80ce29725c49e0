"""The order API: place, list, show and cancel orders. Every write goes through shop.services."""
import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import ApiError, ErrorSerializer, error_responses
from config.api_parsers import JSONParser
from config.api_throttles import OrderPlaceRateThrottle
from shop.callbacks import CALLBACK_URL_MAX_LENGTH, CallbackUrlRefused, callback_url_validate
from shop.checkout import DownstreamUnavailable, checkout_place_order
from shop.models import Order, Product
from shop.selectors import order_list_visible_to, order_visible_to
from shop.services import (
    MAX_LINES_PER_ORDER,
    MAX_QUANTITY_PER_LINE,
    IdempotencyKeyReused,
    OrderItem,
    OrderRejected,
    ShippingAddress,
    order_cancel,
)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = Order._meta.get_field("idempotency_key").max_length
# Visible ASCII and spaces, as HTTP field values are meant to be; also keeps NUL bytes out of the database.
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x20-\x7e]+")


def _max_length(model, field_name: str) -> int:
    return model._meta.get_field(field_name).max_length


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else: DRF's IntegerField would also take "2", 2.0 and "2.0"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


# The one representation of an order, answered by every operation below.
@extend_schema_serializer(component_name="Order")
class OrderOutputSerializer(serializers.Serializer):
    @extend_schema_serializer(component_name="OrderLine")
    class LineSerializer(serializers.Serializer):
        sku = serializers.CharField()
        name = serializers.CharField()
        quantity = serializers.IntegerField()
        unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
        line_total = serializers.DecimalField(max_digits=12, decimal_places=2)

    @extend_schema_serializer(component_name="OrderShippingAddress")
    class AddressSerializer(serializers.Serializer):
        name = serializers.CharField()
        line1 = serializers.CharField()
        city = serializers.CharField()
        postal_code = serializers.CharField()
        country = serializers.CharField()

    @extend_schema_serializer(component_name="OrderLinks")
    class LinksSerializer(serializers.Serializer):
        self = serializers.HyperlinkedIdentityField(view_name="shop_api:order-detail", lookup_url_kwarg="order_id")

    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    items = LineSerializer(source="lines", many=True)
    shipping_address = AddressSerializer()
    created_at = serializers.DateTimeField()
    shipment_status = serializers.CharField()
    tracking_number = serializers.CharField()
    points_awarded = serializers.IntegerField()
    points_reversed = serializers.IntegerField()
    callback_url = serializers.CharField(help_text="Where the shop POSTs the `order.fulfilled` notification; empty if none.")
    links = LinksSerializer(source="*")


@extend_schema_serializer(component_name="OrderAccepted")
class OrderAcceptedOutputSerializer(OrderOutputSerializer):
    """A sync checkout whose downstream call failed: the order IS placed (do not place it again)."""

    @extend_schema_serializer(component_name="DownstreamFailure")
    class DownstreamFailureSerializer(serializers.Serializer):
        service = serializers.CharField(help_text="The service whose synchronous call failed.")
        reason = serializers.CharField()
        detail = serializers.CharField()

    downstream_failure = DownstreamFailureSerializer()


def _order_body(order: Order, request) -> dict:
    return OrderOutputSerializer(order, context={"request": request}).data


class OrderListApi(GenericAPIView):
    @extend_schema(
        operation_id="orders_list",
        summary="List the caller's orders (staff: everyone's)",
        description="Newest first, paginated with `limit` and `offset`.",
        responses={200: OrderOutputSerializer(many=True), **error_responses(401)},
    )
    def get(self, request):
        orders = order_list_visible_to(user=request.user)
        page = self.paginate_queryset(orders)
        return self.get_paginated_response(OrderOutputSerializer(page, many=True, context={"request": request}).data)


class OrderPlaceApi(APIView):
    parser_classes = [JSONParser]
    throttle_classes = [OrderPlaceRateThrottle]

    @extend_schema_serializer(component_name="OrderPlaceRequest")
    class InputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="OrderPlaceItem")
        class ItemSerializer(serializers.Serializer):
            sku = serializers.CharField(max_length=_max_length(Product, "sku"))
            quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY_PER_LINE)

        @extend_schema_serializer(component_name="ShippingAddress")
        class ShippingAddressSerializer(serializers.Serializer):
            name = serializers.CharField(max_length=_max_length(Order, "ship_to_name"))
            line1 = serializers.CharField(max_length=_max_length(Order, "ship_to_line1"))
            city = serializers.CharField(max_length=_max_length(Order, "ship_to_city"))
            postal_code = serializers.CharField(max_length=_max_length(Order, "ship_to_postal_code"))
            country = serializers.RegexField(
                r"^[A-Z]{2}\Z",
                help_text="ISO 3166-1 alpha-2 code, e.g. GB.",
                error_messages={"invalid": "Enter a two-letter country code in capitals (ISO 3166-1 alpha-2), e.g. GB."},
            )

        items = ItemSerializer(
            many=True,
            allow_empty=False,
            max_length=MAX_LINES_PER_ORDER,
            help_text=f"1 to {MAX_LINES_PER_ORDER} lines; lines with the same sku are added together.",
        )
        shipping_address = ShippingAddressSerializer()
        callback_url = serializers.URLField(
            max_length=CALLBACK_URL_MAX_LENGTH,
            required=False,
            help_text=(
                "Optional. An http(s) URL to notify once the order is fulfilled: a signed `order.fulfilled` JSON POST "
                "(headers `X-Eventshop-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`, "
                "`Idempotency-Key: order-<id>-fulfilled`), retried with backoff until it answers 2xx. "
                "Hosts that resolve to private, loopback or link-local addresses are refused."
            ),
        )

        def validate_callback_url(self, value: str) -> str:
            try:
                return callback_url_validate(value)
            except CallbackUrlRefused as exc:
                raise serializers.ValidationError(exc.reason) from exc

    @extend_schema(
        operation_id="orders_place",
        summary="Place an order",
        description=(
            "Prices come from the catalogue, never from the request. With an `Idempotency-Key`, sending the "
            "same request again returns the order it placed (200, `Idempotent-Replayed: true`) and places "
            "nothing; the same key with a different body is refused with 422. With a `callback_url`, the shop "
            "notifies that URL once the order is fulfilled (shipped and points credited)."
        ),
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_KEY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=f"Any unique string (at most {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters).",
            ),
        ],
        responses={
            201: OpenApiResponse(OrderOutputSerializer, description="Placed."),
            200: OpenApiResponse(OrderOutputSerializer, description="A replay: the order this key already placed."),
            **error_responses(400, 401, 409, 422, 429),
            202: OpenApiResponse(OrderAcceptedOutputSerializer, description=(
                "Sync checkout mode only: the order IS placed (see `Location`), but shipping or loyalty failed "
                "(`downstream_failure` says which); it will be completed asynchronously. Do not place it again: "
                "the same request with the same Idempotency-Key tries the calls again and places nothing new.")),
        },
    )
    def post(self, request):
        idempotency_key = _idempotency_key(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            placed = checkout_place_order(
                customer=request.user,
                items=[OrderItem(sku=item["sku"], quantity=item["quantity"]) for item in data["items"]],
                shipping_address=ShippingAddress(**data["shipping_address"]),
                idempotency_key=idempotency_key,
                callback_url=data.get("callback_url", ""),
            )
        except OrderRejected as exc:
            raise ApiError(status_code=exc.status_code, code=type(exc).__name__, errors=exc.errors) from exc
        except IdempotencyKeyReused as exc:
            raise ApiError(
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                code=type(exc).__name__,
                errors={IDEMPOTENCY_KEY_HEADER: ["this key was already used with a different request body"]},
            ) from exc
        except DownstreamUnavailable as exc:
            # Not a 5xx: the order is committed, and a client that retries a 5xx without an
            # Idempotency-Key would place it twice.
            body = {**_order_body(exc.order, request),
                    "downstream_failure": {"service": exc.service, "reason": exc.reason, "detail": str(exc)}}
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["links"]["self"])})
        body = _order_body(placed.order, request)
        if not placed.created:
            return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
        # str(): the link is a DRF Hyperlink, and runserver's wsgiref answers 500 to a header that is not exactly str.
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": str(body["links"]["self"])})


def _idempotency_key(request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        reason = f"must be at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters"
    elif not IDEMPOTENCY_KEY_PATTERN.fullmatch(key) or not key.strip():
        reason = "must be visible ASCII characters, not blank"
    else:
        return key
    raise ValidationError({IDEMPOTENCY_KEY_HEADER: [reason]})


class OrderCollectionApi(OrderListApi, OrderPlaceApi):
    """GET lists and POST places: the contract puts both operations on /api/orders/, and Django routes
    by path, not method, so this class only joins the two. Each keeps its own class, schema and tests."""

    def get_throttles(self):
        # OrderPlaceApi's throttle counts orders placed: listing them is not limited.
        return super().get_throttles() if self.request.method == "POST" else []


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        summary="Show an order (its owner or staff)",
        responses={200: OrderOutputSerializer, **error_responses(401, 404)},
    )
    def get(self, request, order_id: int):
        order = order_visible_to(user=request.user, order_id=order_id)
        if order is None:
            raise NotFound()
        return Response(_order_body(order, request))


class OrderCancelApi(APIView):
    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel an order (its owner or staff)",
        description="Puts the stock back. Cancelling a cancelled order changes nothing and answers 200.",
        request=None,
        responses={200: OrderOutputSerializer, **error_responses(401, 404)},
    )
    def post(self, request, order_id: int):
        order = order_visible_to(user=request.user, order_id=order_id)
        if order is None:
            raise NotFound()
        order = order_cancel(order=order)
        return Response(_order_body(order, request))
