-- One database per service: each owns its data.
CREATE DATABASE eventshop_shop;
CREATE DATABASE eventshop_shipping;
CREATE DATABASE eventshop_loyalty;
