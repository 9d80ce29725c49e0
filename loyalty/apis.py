"""Loyalty's REST API: accounts and their points ledger. Customers are known only by the id the events carry."""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.models import PointsTransaction
from loyalty.selectors import account_get, points_transaction_list
from config.api_errors import error_responses

ACCOUNT_TRANSACTIONS_SHOWN = 50


# One shape for a ledger entry, whether listed on its own or inside its account.
@extend_schema_serializer(component_name="PointsTransaction")
class PointsTransactionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField(source="account.customer_id")
    order_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=PointsTransaction.Kind.choices)
    points = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class PointsTransactionListApi(GenericAPIView):
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        order = serializers.IntegerField(required=False, min_value=1, help_text="The shop's order id.")

    @extend_schema(
        operation_id="loyalty_transactions_list",
        summary="List points transactions (staff)",
        parameters=[FilterSerializer],
        responses={200: PointsTransactionOutputSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(points_transaction_list(order_id=filters.validated_data.get("order")))
        return self.get_paginated_response(PointsTransactionOutputSerializer(page, many=True).data)


class LoyaltyAccountDetailApi(APIView):
    @extend_schema_serializer(component_name="LoyaltyAccount")
    class OutputSerializer(serializers.Serializer):
        customer_id = serializers.IntegerField()
        balance = serializers.IntegerField()
        transactions = PointsTransactionOutputSerializer(
            many=True, help_text=f"The latest {ACCOUNT_TRANSACTIONS_SHOWN}, newest first."
        )

    @extend_schema(
        operation_id="loyalty_accounts_retrieve",
        summary="Show a customer's points (the customer themselves or staff)",
        description=(
            "An account appears with the customer's first points event; until then a customer asking "
            "for their own account sees a balance of 0."
        ),
        responses={200: OutputSerializer, **error_responses(401, 404)},
    )
    def get(self, request, customer_id: int):
        is_self = request.user.id == customer_id
        if not (is_self or request.user.is_staff):
            raise NotFound()
        account = account_get(customer_id=customer_id)
        if account is None:
            if not is_self:
                raise NotFound()
            return Response(self.OutputSerializer({"customer_id": customer_id, "balance": 0, "transactions": []}).data)
        transactions = account.transactions.all()[:ACCOUNT_TRANSACTIONS_SHOWN]
        return Response(
            self.OutputSerializer(
                {"customer_id": account.customer_id, "balance": account.balance, "transactions": transactions}
            ).data
        )
