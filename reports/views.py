"""R11.3: the reports pages."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def report_index(request):
    """The list of reports."""
    return render(request, "reports/index.html", {})
