-- Catalog (src/commerce/catalog): one row per product; `doc` is its JSON (id, title, brand,
-- category, price, currency, image_url, url, attributes, availability). The search index is
-- rebuilt from this table at startup.
CREATE TABLE catalog_products (
    id            TEXT PRIMARY KEY NOT NULL,
    doc           TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TRIGGER catalog_products_changes AFTER INSERT OR UPDATE OR DELETE ON catalog_products
    FOR EACH ROW EXECUTE FUNCTION cuecast_notify_row('id');
