from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from booking import pages

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("leads.api")),  # before booking's catch-all 404
    path("api/v1/", include("booking.api_urls")),
    path("calendars/", include("calendars.urls")),
    path("insights/", include("insights.urls")),
    path("", include("booking.page_urls")),
]
